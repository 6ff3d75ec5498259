// What every browser scenario shares: Debian's Chromium driven by playwright-core, a tally of
// checks, screenshots, CSP-violation watching and the axe-core accessibility pass.
//
// The functional checks always run with the page's Content-Security-Policy enforced (a CSP
// violation is itself a failure); only the separate axe context bypasses CSP, to inject axe.

import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const VIEWPORT = { width: 900, height: 1100 };

export class Run {
  constructor(config) {
    this.config = config;
    this.origin = config.origin;
    this.passed = 0;
    this.failures = [];
    this.screenshots = config.screenshots;
    mkdirSync(this.screenshots, { recursive: true });
  }

  async start() {
    this.browser = await chromium.launch({
      executablePath: this.config.chromium || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
      headless: true,
    });
    return this;
  }

  async close() {
    await this.browser?.close();
  }

  /// A fresh browser profile (cookies, storage) with CSP enforced; `locale` sets the
  /// browser's language (its Accept-Language).
  async person(label, { locale = 'en-US' } = {}) {
    const context = await this.browser.newContext({ viewport: VIEWPORT, acceptDownloads: true, locale });
    context.setDefaultTimeout(20_000);
    const page = await context.newPage();
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) {
        this.fail(`${label}: CSP violation on ${page.url()}: ${msg.text()}`);
      }
    });
    page.on('pageerror', (err) => this.fail(`${label}: script error on ${page.url()}: ${err.message}`));
    return { context, page, label, locale };
  }

  url(path) {
    return path.startsWith('http') ? path : this.origin + path;
  }

  ok(what) {
    this.passed += 1;
    console.log(`ok - ${what}`);
  }

  fail(what) {
    this.failures.push(what);
    console.log(`FAILED - ${what}`);
  }

  check(condition, what, detail = '') {
    if (condition) this.ok(what);
    else this.fail(detail ? `${what} (${detail})` : what);
    return condition;
  }

  /// Runs one step; an exception fails the step and the run goes on with the next one.
  async step(name, body) {
    const only = process.env.PORTICO_BROWSER_ONLY;
    if (only && !new RegExp(only).test(name)) {
      console.log(`# ${name} (not selected by PORTICO_BROWSER_ONLY)`);
      return;
    }
    console.log(`# ${name}`);
    try {
      await body();
    } catch (e) {
      this.fail(`${name}: ${e.stack || e}`);
    }
  }

  /// The whole page to `{screenshots}/{name}.png`; with `readme`, also what a 900 × 1100
  /// window shows to `{screenshots}/readme/{name}.png` (the README's pictures).
  async screenshot(page, name, { readme = false } = {}) {
    const path = join(this.screenshots, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    console.log(`  screenshot ${path}`);
    if (readme) {
      mkdirSync(join(this.screenshots, 'readme'), { recursive: true });
      await page.screenshot({ path: join(this.screenshots, 'readme', `${name}.png`) });
    }
  }

  /// Checks that `text` is (or is not) on the page or in `selector`, case-insensitively.
  async sees(page, text, who, selector = 'body') {
    const body = await textOf(page, selector);
    this.check(body.toLowerCase().includes(text.toLowerCase()), `${who} sees "${text}" on ${pathOf(page)}`);
  }

  async doesNotSee(page, text, who, selector = 'body') {
    const body = await textOf(page, selector);
    // The markup counts too, except the session's random CSRF token: it can hold any three
    // letters by chance ("hCG" was seen), and it is the server's, never the record's.
    const html = (await page.content()).replace(/<input[^>]*name="csrf"[^>]*>/gi, '').toLowerCase();
    const found = body.toLowerCase().includes(text.toLowerCase()) || html.includes(text.toLowerCase());
    this.check(!found, `${who} does not see "${text}" on ${pathOf(page)}`);
  }

  /// Runs axe-core on each path in a context that shares `from`'s cookies and bypasses CSP
  /// (axe is injected); fails on serious or critical violations and prints them.
  async axe(from, paths, who) {
    await this.axeAfter(from, who, async (page) => {
      for (const path of paths) {
        await page.goto(this.url(path));
        await this.axeHere(page, who);
      }
    });
  }

  /// Like `axe`, for pages reached by `reach(page, check)` (a form's answer, which no path
  /// gives): `reach` gets there in the CSP-bypassing context and calls `check()` on each.
  async axeAfter(from, who, reach) {
    const context = await this.browser.newContext({
      viewport: VIEWPORT,
      bypassCSP: true,
      locale: from.locale,
      storageState: await from.context.storageState(),
    });
    const page = await context.newPage();
    try {
      await reach(page, () => this.axeHere(page, who));
    } finally {
      await context.close();
    }
  }

  /// axe-core on the page as it is now (in a CSP-bypassing context).
  async axeHere(page, who) {
    const path = pathOf(page);
    await page.addScriptTag({ content: AXE_SOURCE });
    const result = await page.evaluate(async () => {
      // eslint-disable-next-line no-undef
      const r = await axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
        resultTypes: ['violations'],
      });
      return r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary),
      }));
    });
    const serious = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    for (const v of result.filter((v) => !serious.includes(v))) {
      console.log(`  axe (${v.impact}) ${v.id} on ${path}: ${v.help}`);
    }
    for (const v of serious) {
      console.log(`  axe ${v.impact} ${v.id} on ${path}: ${v.help}\n    ${v.nodes.join('\n    ')}`);
    }
    this.check(
      serious.length === 0,
      `axe: no serious or critical violations on ${path} (${who})`,
      serious.map((v) => v.id).join(', '),
    );
  }

  /// Prints the tally and gives the exit code.
  finish() {
    if (this.failures.length) {
      console.log('\nfailures:');
      for (const f of this.failures) console.log(`  - ${f}`);
    }
    console.log(`browser: ${this.passed} passed, ${this.failures.length} failed`);
    return this.failures.length ? 1 : 0;
  }
}

export async function textOf(page, selector) {
  const locator = page.locator(selector);
  const n = await locator.count();
  const texts = [];
  for (let i = 0; i < n; i++) texts.push(await locator.nth(i).innerText());
  return texts.join('\n');
}

export function pathOf(page) {
  const u = new URL(page.url());
  return u.pathname;
}
