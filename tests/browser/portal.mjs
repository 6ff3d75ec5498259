// The patient pages in a real browser (issue 6 part 7), run by tests/it/browser_pages.rs:
//
//   PORTICO_BROWSER_CONFIG='{"origin": …}' node tests/browser/portal.mjs main|source-down
//
// `main`: an adult registers, connects his record, reads it, downloads it, allows an app and
// revokes it, reads his access log and signs out; a parent of a 10-year-old (who also has a
// 16-year-old), a parent of a 15-year-old and the 15-year-old himself each see their pages —
// checked for what they must see AND what they must not. `source-down`: with the lab down,
// the record pages carry the banner naming it; an idle session ends.
// People are the fixture people of fixtures/README.md (P01 Bob, P07 Maya, P08 Ethan, P09 Noah).

import { Run, textOf, pathOf, VIEWPORT } from './lib.mjs';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { unzipSync, strFromU8 } from 'fflate';

const config = JSON.parse(process.env.PORTICO_BROWSER_CONFIG || '{}');
const scenario = process.argv[2] || 'main';
const run = await new Run(config).start();

// What each person's record holds, as fixtures/README.md describes it.
const BOB = {
  sees: {
    results: ['Hemoglobin A1c', '8.1', '7.6', '7.2', 'Potassium', 'Bayview Regional Reference Lab'],
    medications: ['metformin', 'amlodipine'],
    allergies: ['Penicillin'],
    problems: ['Type 2 diabetes', 'hypertension'],
    visits: ['Emergency'],
  },
};
const ETHAN_FOR_MOTHER = {
  sees: {
    problems: ['Torus fracture'],
    allergies: ['Peanut'],
    immunizations: ['MMR', 'DTaP'],
    medications: ['epinephrine'],
    visits: ['Emergency department visit'],
  },
};
// Maya (16) for her mother: a limited record without what she consented to alone.
const MAYA_FOR_MOTHER = {
  sees: { immunizations: ['Tdap'] },
  never: ['pregnan', 'Chlamydia', 'Camila', 'contraceptive', 'Contraception visit', 'Depression', 'PHQ-9', 'hCG'],
};
// Noah (15) for his father: asthma and its medicines, never the anxiety, its score or visits.
const NOAH_FOR_FATHER = {
  sees: { problems: ['asthma'], medications: ['albuterol', 'fluticasone'], immunizations: ['Tdap'] },
  never: ['anxiety', 'GAD-7', 'Well child visit', 'Spirometry', 'Thyrotropin'],
};
// Noah for himself: everything, including what his father must not see.
const NOAH_FOR_HIMSELF = {
  sees: { problems: ['Generalized anxiety disorder', 'asthma'], results: ['GAD-7'], visits: ['Well child visit'] },
};

try {
  if (scenario === 'main') await main();
  else if (scenario === 'source-down') await sourceDown();
  else run.fail(`unknown scenario ${scenario}`);
} catch (e) {
  run.fail(`scenario ${scenario} stopped: ${e.stack || e}`);
} finally {
  await run.close();
}
process.exit(run.finish());

// ---------------------------------------------------------------------------------------

async function main() {
  const adult = config.adult;
  const bob = await run.person('adult');

  await run.step('front door: says what this is and leads to sign-in', async () => {
    const { page } = bob;
    await page.goto(run.url('/'));
    await run.screenshot(page, 'front-door');
    run.check((await textOf(page, 'main')).includes('patient access gateway'), 'the front door says what this is');
    await Promise.all([page.waitForURL('**/login'), page.getByRole('link', { name: 'Sign in', exact: true }).click()]);
    run.ok('its Sign in link leads to the sign-in page');
  });

  await run.step('sign-in page: a wrong password is refused plainly and nothing opens', async () => {
    const { page } = bob;
    await page.goto(run.url('/login'));
    await run.screenshot(page, 'sign-in', { readme: true });
    await signInForm(page, 'nobody@example.org', 'not-the-password-at-all');
    run.check(pathOf(page) === '/login', 'a failed sign-in stays on the sign-in page');
    const alert = await textOf(page, '[role=alert]');
    run.check(alert.length > 0, 'a failed sign-in shows an error message', alert);
    const records = await page.goto(run.url('/records'));
    run.check(pathOf(page) === '/login', 'the records are not reachable signed out', `${records?.status()} ${page.url()}`);
  });

  await run.step('adult: registers and connects his record (identity verification)', async () => {
    const { page } = bob;
    await page.goto(run.url('/register'));
    await run.screenshot(page, 'register');
    await page.getByLabel('Your name').fill(adult.name);
    await page.getByLabel('User name').fill(adult.username);
    await page.getByLabel('Password').fill(adult.password);
    await Promise.all([page.waitForURL('**/enroll'), page.getByRole('button', { name: 'Create account' }).click()]);
    run.ok('registration leads to connecting the record');
    await run.sees(page, 'confirm your e-mail address', 'adult (not yet confirmed)');
    await confirmEmail(page, adult.username);
    await run.screenshot(page, 'enroll');
    await enrollForm(page, adult.mrn, adult.birth_date, 'Smith');
    run.check(pathOf(page) === '/enroll', 'a wrong last name does not connect the record');
    const alert = await textOf(page, '[role=alert]');
    run.check(/couldn|could not|not match|check/i.test(alert), 'and says so plainly', alert);
    await enrollForm(page, adult.mrn, adult.birth_date, adult.family);
    run.check(pathOf(page) !== '/enroll', 'the right details connect the record', page.url());
  });

  await run.axe(bob, ['/', '/login', '/register', '/enroll'], 'front door, signed-out and enrollment pages');

  let home = null;
  await run.step('adult: his record home, sections and no banner while every system is up', async () => {
    home = await openOnlyRecord(bob.page, 'adult');
    const { page } = bob;
    run.check(!/pt-\d|HG\d|Martinez|1967/i.test(home), 'the record URL carries an opaque id only', home);
    const response = await page.goto(home);
    const headers = response.headers();
    run.check(/no-store/.test(headers['cache-control'] || ''), 'record pages are not cached (Cache-Control: no-store)');
    run.check(/default-src 'none'/.test(headers['content-security-policy'] || ''), 'record pages carry a strict Content-Security-Policy');
    const emergency = await textOf(page, '[data-testid=emergency-notice]');
    run.check(/911/.test(emergency), 'the home page says it is not for emergencies (call 911)', emergency);
    await run.sees(page, 'Martinez', 'adult', '[data-testid=whose-record]');
    await expectWithheldNotice(page, 'adult');
    run.check((await page.locator('[data-testid=source-banner]').count()) === 0, 'no source banner while every system is up');
    run.check((await page.locator('form[method=post][action="/logout"] button').count()) > 0, 'a sign-out button');
    await run.screenshot(page, 'record-home', { readme: true });
    for (const [section, texts] of Object.entries(BOB.sees)) {
      await page.goto(`${home}/${section}`);
      for (const t of texts) await run.sees(page, t, 'adult', `[data-testid=section-${section}]`);
      await expectWithheldNotice(page, 'adult');
    }
    await page.goto(`${home}/results`);
    const chart = page.locator('[data-testid=section-results] svg, [data-testid=section-results] img');
    run.check((await chart.count()) > 0, 'the repeated HbA1c results have a trend chart');
    await run.screenshot(page, 'results', { readme: true });
    for (const section of ['medications', 'allergies', 'immunizations', 'problems', 'visits', 'documents', 'care-team']) {
      await page.goto(`${home}/${section}`);
      run.check((await page.locator(`[data-testid=section-${section}]`).count()) === 1, `the ${section} page has its list`);
      await run.screenshot(page, `section-${section}`);
    }
    await run.axe(bob, [home, ...['results', 'medications', 'visits', 'documents', 'care-team'].map((s) => `${home}/${s}`)], 'adult');
    // On a phone (375 px wide) the pages fit the screen: nothing scrolls sideways.
    await page.setViewportSize({ width: 375, height: 740 });
    for (const path of [home, `${home}/results`, `${home}/visits`, `${home}/access-log`]) {
      await page.goto(path);
      const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      run.check(scroll <= width, `${pathOf(page)} fits a phone's width (${scroll} <= ${width} px)`);
    }
    await run.screenshot(page, 'phone-results');
    await page.setViewportSize(VIEWPORT);
  });

  await run.step('adult: downloads his record as FHIR JSON and as a zip with a readable summary', async () => {
    const { page } = bob;
    await page.goto(home);
    const json = await download(page, 'a[href$="download.json"]');
    const bundle = JSON.parse(json.toString('utf8'));
    run.check(bundle.resourceType === 'Bundle', 'the JSON download is a FHIR Bundle');
    const types = new Set((bundle.entry || []).map((e) => e.resource?.resourceType));
    run.check(types.has('Patient') && types.has('Observation') && types.has('MedicationRequest'), 'with his Patient, results and medicines', [...types].join(','));
    run.check(json.includes('Martinez') && !json.includes('Whitfield') && !json.includes('Rodriguez'), "his data only, no one else's");
    const zip = await download(page, 'a[href$="download.zip"]');
    run.check(zip.subarray(0, 4).toString('binary') === 'PK\x03\x04', 'the zip download is a zip file');
    const files = unzipSync(new Uint8Array(zip));
    const names = Object.keys(files);
    run.check(names.some((n) => /Observation.*\.ndjson$/.test(n)), 'with one NDJSON file per type', names.join(', '));
    const summary = names.find((n) => n.endsWith('.html'));
    const html = summary ? strFromU8(files[summary]) : '';
    run.check(/Martinez/.test(html) && /Hemoglobin A1c|HbA1c/i.test(html), 'and a readable HTML summary of the record', summary);
    run.check(/complete record|not shown|withheld/i.test(html), 'the summary carries the withheld-notice');
  });

  let token = null;
  let appsPage = null;
  await run.step('adult: allows an app through the SMART authorize pages', async () => {
    token = await authorizeApp(bob);
    const read = await fhirGet(`Patient/${token.patient}`, token.access_token);
    run.check(read.status === 200, "the app's token reads his record", `status ${read.status}`);
  });

  await run.step('adult: the apps page lists the app, and revoking it stops its token', async () => {
    const { page } = bob;
    appsPage = home ? `${home}/apps` : '/account';
    await page.goto(run.url(appsPage));
    run.check(pathOf(page) === new URL(run.url(appsPage)).pathname, 'the apps page opens', page.url());
    await run.screenshot(page, 'apps', { readme: true });
    await run.axe(bob, [appsPage], 'adult');
    const revoke = page.getByRole('button', { name: new RegExp(`Revoke.*${config.app.name}`, 'i') });
    run.check((await revoke.count()) === 1, 'one revoke button for the app');
    await Promise.all([page.waitForLoadState('load'), revoke.click()]);
    await page.goto(run.url(appsPage));
    run.check((await page.getByRole('button', { name: /Revoke/i }).count()) === 0, 'after revoking, the app is no longer listed');
    const read = await fhirGet(`Patient/${token.patient}`, token.access_token);
    run.check(read.status === 401, "the revoked app's token stops working", `status ${read.status}`);
  });

  await run.step('adult: the access log shows earlier accesses, including the app', async () => {
    const { page } = bob;
    await page.goto(`${home}/access-log`);
    await run.sees(page, config.app.name, 'adult', '[data-testid=section-access-log]');
    await run.sees(page, 'Downloaded a copy', 'adult', '[data-testid=section-access-log]');
    await expectWithheldNotice(page, 'adult');
    await run.screenshot(page, 'access-log', { readme: true });
    await run.axe(bob, [`${home}/access-log`], 'adult');
  });

  await run.step("adult: shares allergies by link, asks for a correction, reads who his record was disclosed to, sees his proxies and mails", async () => {
    const { page } = bob;
    await page.goto(`${home}/share`);
    await page.locator('input[name=section][value=allergies]').check();
    await page.locator('#label').fill('For school');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Make the link' }).click()]);
    const shlink = await page.locator('[data-testid=share-shlink]').inputValue();
    run.check(shlink.startsWith('shlink:/'), 'the made link is a SMART Health Link', shlink.slice(0, 20));
    run.check((await page.locator('[data-testid=share-qr] svg').count()) === 1, 'with its QR code');
    await run.screenshot(page, 'share', { readme: true });
    await page.goto(`${home}/share`);
    await run.sees(page, 'For school', 'adult');
    await page.goto(`${home}/corrections`);
    await page.locator('#correction-text').fill('My address is now 12 Harbor Way.');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Send the request' }).click()]);
    await page.goto(`${home}/corrections`);
    await run.sees(page, '12 Harbor Way', 'adult');
    await run.screenshot(page, 'corrections', { readme: true });
    await page.goto(`${home}/disclosures`);
    await run.sees(page, config.app.name, 'adult');
    await run.screenshot(page, 'disclosures', { readme: true });
    await page.goto(run.url('/account/proxies'));
    await run.screenshot(page, 'proxies', { readme: true });
    await page.goto(run.url('/account/notices'));
    await run.screenshot(page, 'notices', { readme: true });
    await run.axe(bob, [`${home}/share`, `${home}/corrections`, `${home}/disclosures`, '/account/proxies', '/account/notices'], 'adult');
  });

  await run.step('adult: after signing out, Back and reload show the sign-in page, never the record', async () => {
    const { page } = bob;
    await page.goto(`${home}/results`);
    await Promise.all([page.waitForURL('**/login'), page.getByRole('button', { name: 'Sign out' }).first().click()]);
    run.ok('signing out lands on the sign-in page');
    await page.goBack();
    await expectSignedOut(page, 'Back after signing out');
    await page.reload();
    await expectSignedOut(page, 'reload after signing out');
    await page.goto(`${home}/results`);
    await expectSignedOut(page, 'opening a record page after signing out');
  });
  await bob.context.close();

  await run.step('adult with a note written for staff: sees her own notes, never the staff note', async () => {
    const sarah = await run.person('adult with a staff note');
    const { page } = sarah;
    await signIn(page, config.adult_with_staff_note);
    const record = await openOnlyRecord(page, 'Sarah');
    await page.goto(`${record}/documents`);
    await run.sees(page, 'Progress note', 'Sarah', '[data-testid=section-documents]');
    for (const section of ['', '/documents', '/results', '/problems', '/visits']) {
      await page.goto(`${record}${section}`);
      for (const t of ['Internal staff note', 'STAFF ONLY', 'speak with her alone']) await run.doesNotSee(page, t, 'Sarah');
      await expectWithheldNotice(page, 'Sarah');
    }
    await sarah.context.close();
  });

  await run.step('parent of a 10-year-old (who also has a 16-year-old): sees the child, switches records', async () => {
    const ana = await run.person('mother');
    const { page } = ana;
    await signIn(page, config.parent_of_ten);
    await page.goto(run.url('/records'));
    run.check(pathOf(page) === '/records', 'a parent of two children gets the menu of records');
    await run.sees(page, 'Ethan', 'mother');
    await run.sees(page, 'Maya', 'mother');
    await run.screenshot(page, 'records-menu');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('link', { name: /Ethan/ }).first().click()]);
    const ethan = recordBase(page.url());
    await run.sees(page, 'Ethan', 'mother', '[data-testid=whose-record]');
    run.check((await page.locator('[data-testid=record-switcher]').count()) === 1, 'a record switcher is on the page');
    await expectWithheldNotice(page, 'mother');
    for (const [section, texts] of Object.entries(ETHAN_FOR_MOTHER.sees)) {
      await page.goto(`${ethan}/${section}`);
      await run.sees(page, 'Ethan', 'mother', '[data-testid=whose-record]');
      for (const t of texts) await run.sees(page, t, 'mother', `[data-testid=section-${section}]`);
      for (const t of MAYA_FOR_MOTHER.never) await run.doesNotSee(page, t, "mother (on Ethan's record)");
    }
    await page.goto(`${ethan}/problems`);
    await run.screenshot(page, 'parent-child-problems');
    await switchTo(page, 'Maya');
    const maya = recordBase(page.url());
    run.check(maya !== ethan, 'the switcher opens the other child', page.url());
    await run.sees(page, 'Maya', 'mother', '[data-testid=whose-record]');
    for (const section of ['', '/results', '/problems', '/medications', '/visits', '/documents', '/immunizations']) {
      await page.goto(`${maya}${section}`);
      await run.sees(page, 'Maya', 'mother', '[data-testid=whose-record]');
      await expectWithheldNotice(page, 'mother');
      for (const t of MAYA_FOR_MOTHER.never) await run.doesNotSee(page, t, "mother (on Maya's record)");
    }
    await page.goto(`${maya}/immunizations`);
    for (const t of MAYA_FOR_MOTHER.sees.immunizations) await run.sees(page, t, 'mother', '[data-testid=section-immunizations]');
    await run.axe(ana, ['/records', `${maya}/immunizations`], 'mother');
    await ana.context.close();
  });

  await run.step('parent of a 15-year-old: a limited record, never the confidential care', async () => {
    const david = await run.person('father');
    const { page } = david;
    await signIn(page, config.parent_of_fifteen);
    const noah = await openOnlyRecord(page, 'father');
    await run.sees(page, 'Noah', 'father', '[data-testid=whose-record]');
    await expectWithheldNotice(page, 'father');
    for (const section of ['', '/results', '/problems', '/medications', '/visits', '/documents', '/immunizations', '/allergies', '/care-team']) {
      await page.goto(`${noah}${section}`);
      for (const t of NOAH_FOR_FATHER.never) await run.doesNotSee(page, t, 'father');
      await expectWithheldNotice(page, 'father');
    }
    for (const [section, texts] of Object.entries(NOAH_FOR_FATHER.sees)) {
      await page.goto(`${noah}/${section}`);
      for (const t of texts) await run.sees(page, t, 'father', `[data-testid=section-${section}]`);
    }
    await page.goto(`${noah}/problems`);
    await run.screenshot(page, 'parent-teen-problems');
    await run.axe(david, [noah, `${noah}/problems`], 'father');
    await david.context.close();
  });

  await run.step('adolescent (15): connects his own record and sees his confidential care', async () => {
    const teen = await run.person('teen');
    const { page } = teen;
    const t = config.teen;
    await page.goto(run.url('/register'));
    await page.getByLabel('Your name').fill(t.name);
    await page.getByLabel('User name').fill(t.username);
    await page.getByLabel('Password').fill(t.password);
    await Promise.all([page.waitForURL('**/enroll'), page.getByRole('button', { name: 'Create account' }).click()]);
    await confirmEmail(page, t.username);
    await enrollForm(page, t.mrn, t.birth_date, t.family);
    run.check(pathOf(page) !== '/enroll', 'the teen connects his own record', page.url());
    const noah = await openOnlyRecord(page, 'teen');
    await run.sees(page, 'Noah', 'teen', '[data-testid=whose-record]');
    for (const [section, texts] of Object.entries(NOAH_FOR_HIMSELF.sees)) {
      await page.goto(`${noah}/${section}`);
      for (const x of texts) await run.sees(page, x, 'teen', `[data-testid=section-${section}]`);
    }
    await page.goto(`${noah}/problems`);
    await run.screenshot(page, 'teen-problems');
    await page.goto(`${noah}/access-log`);
    await run.sees(page, 'father', 'teen (his father opened his record)', '[data-testid=section-access-log]');
    await run.axe(teen, [`${noah}/access-log`], 'teen');
    await teen.context.close();
  });
}

async function sourceDown() {
  const adult = config.adult;
  const bob = await run.person('adult');
  const { page } = bob;
  let home = null;
  await run.step('with the lab down, the record pages name it in a banner and show the rest', async () => {
    await signIn(page, adult);
    home = await openOnlyRecord(page, 'adult');
    const banner = await textOf(page, '[data-testid=source-banner]');
    run.check(/Bayview Regional Reference Lab/.test(banner), 'the record home has a banner naming the lab', banner);
    await run.screenshot(page, 'source-down-home');
    await page.goto(`${home}/results`);
    const resultsBanner = await textOf(page, '[data-testid=source-banner]');
    run.check(/Bayview Regional Reference Lab/.test(resultsBanner) && /missing/i.test(resultsBanner), 'the results page says results from the lab may be missing', resultsBanner);
    await run.doesNotSee(page, 'Potassium', 'adult (the lab is down)');
    await page.goto(`${home}/medications`);
    await run.sees(page, 'metformin', 'adult (the hospital is up)', '[data-testid=section-medications]');
    await run.screenshot(page, 'source-down-results');
    await run.axe(bob, [`${home}/results`], 'adult, lab down');
  });
  await run.step('an idle session ends: the next page is the sign-in page', async () => {
    await page.waitForTimeout(config.idle_wait_ms);
    await page.goto(`${home}/medications`);
    await expectSignedOut(page, 'a page opened after the idle timeout');
  });
  await bob.context.close();
}

// ---------------------------------------------------------------------------------------

async function signInForm(page, username, password) {
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Sign in' }).click()]);
}

async function signIn(page, who) {
  await page.goto(run.url('/login'));
  await signInForm(page, who.username, who.password);
  if (!run.check(pathOf(page) !== '/login', `${who.username} signs in`, page.url())) {
    throw new Error(`${who.username} could not sign in`);
  }
}

/// Opens the verification link the gateway wrote for `username` to its mail folder (the
/// test gateway's `[mail] folder`), as the person would from their inbox; back on /enroll.
async function confirmEmail(page, username) {
  let link = null;
  for (let i = 0; i < 1500 && !link; i++) {
    for (const name of readdirSync(config.mail_dir).filter((n) => n.endsWith('.eml'))) {
      // The body may be quoted-printable (a long link): undo soft breaks and =XX.
      const text = readFileSync(join(config.mail_dir, name), 'utf8')
        .replace(/=\r?\n/g, '')
        .replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
      const found = text.match(/http\S*\/verify-email\?token=[0-9a-f]{64}/);
      if (found && (text.match(/^To: (.*)$/im)?.[1] ?? '').includes(username)) link = found[0];
    }
    if (!link) await new Promise((r) => setTimeout(r, 20));
  }
  if (!run.check(link !== null, `the verification mail for ${username} arrived`)) return;
  await page.goto(link);
  run.check(/confirmed/i.test(await textOf(page, 'main')), 'the link confirms the address', page.url());
  await page.goto(run.url('/enroll'));
}

/// The medical-record-number form of `/enroll` (the page also has the activation-code form).
async function enrollForm(page, mrn, birthDate, family) {
  const form = page.locator('form', { has: page.getByLabel('Medical record number') });
  await form.getByLabel('Medical record number').fill(mrn);
  await form.getByLabel('Date of birth').fill(birthDate);
  await form.getByLabel('Last name').fill(family);
  await Promise.all([page.waitForLoadState('load'), form.getByRole('button', { name: 'Connect my record' }).click()]);
}

/// `/records` for an account with one record redirects to it; returns the record's base URL.
async function openOnlyRecord(page, who) {
  await page.goto(run.url('/records'));
  const base = recordBase(page.url());
  if (!run.check(/\/records\/[^/]+$/.test(new URL(page.url()).pathname), `${who}: /records opens the one record`, page.url())) {
    throw new Error('no record page');
  }
  return base;
}

/// `…/records/{link}` of a record page URL.
function recordBase(url) {
  const u = new URL(url);
  const m = u.pathname.match(/^\/records\/[^/]+/);
  return m ? u.origin + m[0] : url;
}

async function switchTo(page, name) {
  const switcher = page.locator('[data-testid=record-switcher]');
  const link = switcher.getByRole('link', { name: new RegExp(name) });
  if ((await link.count()) > 0) {
    await Promise.all([page.waitForLoadState('load'), link.first().click()]);
    return;
  }
  const select = switcher.locator('select');
  const option = await select.locator('option', { hasText: name }).first().getAttribute('value');
  await select.selectOption(option);
  await Promise.all([page.waitForLoadState('load'), switcher.getByRole('button').first().click()]);
}

async function expectWithheldNotice(page, who) {
  const notice = await textOf(page, '[data-testid=withheld-notice]');
  run.check(
    notice.length > 0 && /request|complete record|Information Management/i.test(notice),
    `${who}: the withheld-notice (and how to request the complete record) is on ${pathOf(page)}`,
  );
}

async function expectSignedOut(page, what) {
  const path = pathOf(page);
  const body = await textOf(page, 'body');
  const whose = await page.locator('[data-testid=whose-record]').count();
  run.check(path === '/login' && whose === 0 && !/Martinez|Hemoglobin/.test(body), `${what} shows the sign-in page, not the record`, `${path}`);
}

/// Clicks a download link; returns the downloaded bytes.
async function download(page, selector) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.locator(selector).first().click()]);
  const path = await dl.path();
  const bytes = readFileSync(path);
  run.check(bytes.length > 0, `downloaded ${dl.suggestedFilename()} (${bytes.length} bytes)`);
  return bytes;
}

/// Walks the SMART standalone launch in the signed-in browser (whose record, consent,
/// Allow), catches the redirect to the app and exchanges the code; returns the token answer.
async function authorizeApp(person) {
  const { page } = person;
  const app = config.app;
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: app.client_id,
    redirect_uri: app.redirect_uri,
    scope: 'launch/patient openid fhirUser patient/*.rs',
    state: 'browser-state-1',
    aud: config.fhir,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  await page.goto(run.url(`/authorize?${q}`));
  run.check(pathOf(page) === '/authorize/pick', 'a signed-in person goes straight to choosing whose record', page.url());
  await run.screenshot(page, 'authorize-pick');
  await run.axe(person, ['/authorize/pick'], 'adult');
  await Promise.all([page.waitForURL('**/authorize/consent'), page.getByRole('button', { name: 'Continue' }).click()]);
  await run.sees(page, app.name, 'adult');
  await run.screenshot(page, 'authorize-consent');
  await run.axe(person, ['/authorize/consent'], 'adult');
  await Promise.all([page.waitForURL(`${app.redirect_uri}**`), page.getByRole('button', { name: 'Allow', exact: true }).click()]);
  const back = new URL(page.url());
  run.check(back.searchParams.get('state') === 'browser-state-1', 'the app gets its state back');
  const code = back.searchParams.get('code');
  const r = await fetch(run.url('/token'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: app.redirect_uri, client_id: app.client_id, code_verifier: verifier }),
  });
  const answer = await r.json();
  if (!run.check(r.status === 200 && answer.access_token, 'the code is exchanged for a token', JSON.stringify(answer))) {
    throw new Error('no token');
  }
  return answer;
}

async function fhirGet(path, token) {
  const r = await fetch(`${config.fhir}/${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: await r.text() };
}
