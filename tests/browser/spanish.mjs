// The main journeys in Spanish, in Debian's Chromium: a browser that prefers Spanish (es-MX)
// gets the pages in Spanish; a person registers, confirms the address, connects the record,
// reads the record pages and downloads the record (the zip's summary in Spanish); the
// language switch changes the pages and is remembered in the browser and on the account; a
// parent reading a teen's record in Spanish sees nothing that is withheld; then the rights
// pages in Spanish: share links (the form, the made link, the list, the recipient's web
// view), corrections (request, status, statement of disagreement), the accounting of
// disclosures (page and printable), proxies (the list, the invitation accepted) and notice
// preferences. axe-core checks every Spanish page. Run by tests/it/browser_pages.rs (scenario `spanish`).

import { Run, textOf, pathOf } from './lib.mjs';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync, strFromU8 } from 'fflate';

const config = JSON.parse(process.env.PORTICO_BROWSER_CONFIG || '{}');
const run = await new Run(config).start();

// Maya (16) for her mother: what Maya consented to alone never shows, in any language.
const MAYA_NEVER = ['pregnan', 'embaraz', 'Chlamydia', 'Camila', 'contraceptive', 'Contraception visit', 'Depression', 'PHQ-9', 'hCG'];
// A Spanish short date ("3 dic 2026") or month ("diciembre de 2026").
const SPANISH_DATE = /\b\d{1,2} (ene|feb|mar|abr|may|jun|jul|ago|sept?|oct|nov|dic)\.? \d{4}\b|\b(enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre) de \d{4}\b/;

try {
  await spanish();
} catch (e) {
  run.fail(`scenario spanish stopped: ${e.stack || e}`);
} finally {
  await run.close();
}
process.exit(run.finish());

async function spanish() {
  const adult = config.adult;
  const rosa = await run.person('adult (es-MX)', { locale: 'es-MX' });
  const { page } = rosa;

  await run.step('front door: a browser that prefers Spanish gets Spanish', async () => {
    const response = await page.goto(run.url('/'));
    run.check((await page.getAttribute('html', 'lang')) === 'es', '<html lang="es">');
    run.check(response.headers()['content-language'] === 'es', 'Content-Language: es');
    await run.sees(page, 'portal de acceso para pacientes', 'adult (es)', 'main');
    await run.doesNotSee(page, 'patient access gateway', 'adult (es)');
    await run.screenshot(page, 'es-front-door');
    await Promise.all([page.waitForURL('**/login'), page.getByRole('link', { name: 'Iniciar sesión', exact: true }).click()]);
    run.ok('"Iniciar sesión" leads to the sign-in page');
    await run.sees(page, 'Nombre de usuario (su correo electrónico)', 'adult (es)');
  });

  await run.step('registers, confirms the address and connects the record in Spanish', async () => {
    await page.goto(run.url('/register'));
    await run.screenshot(page, 'es-register');
    await page.getByLabel('Su nombre').fill(adult.name);
    await page.getByLabel('Nombre de usuario').fill(adult.username);
    await page.getByLabel('Contraseña').fill(adult.password);
    await Promise.all([page.waitForURL('**/enroll'), page.getByRole('button', { name: 'Crear la cuenta' }).click()]);
    await run.sees(page, 'confirme su correo electrónico', 'adult (es, not yet confirmed)');
    await confirmEmail(page, adult.username);
    await enrollForm(page, adult.mrn, adult.birth_date, 'Smith');
    run.check(pathOf(page) === '/enroll', 'a wrong last name does not connect the record');
    const alert = await textOf(page, '[role=alert]');
    run.check(/No pudimos verificar/.test(alert), 'and says so in Spanish', alert);
    await enrollForm(page, adult.mrn, adult.birth_date, adult.family);
    run.check(pathOf(page) !== '/enroll', 'the right details connect the record', page.url());
  });

  await run.axe(rosa, ['/', '/login', '/register', '/enroll', '/account'], 'Spanish signed-out, enrollment and account pages');

  let home = null;
  await run.step('record pages in Spanish; the record itself as its sources wrote it', async () => {
    await page.goto(run.url('/records'));
    home = new URL(page.url()).origin + new URL(page.url()).pathname.match(/^\/records\/[^/]+/)[0];
    run.check((await page.getAttribute('html', 'lang')) === 'es', 'the record home is <html lang="es">');
    await run.sees(page, 'Resumen de su expediente', 'adult (es)', 'h1');
    await run.sees(page, 'Está viendo su propio expediente', 'adult (es)', '[data-testid=whose-record]');
    const emergency = await textOf(page, '[data-testid=emergency-notice]');
    run.check(/No es para emergencias/.test(emergency) && /911/.test(emergency), 'the emergency notice is in Spanish', emergency);
    await run.sees(page, 'Acerca de este expediente', 'adult (es)', '[data-testid=withheld-notice]');
    await run.screenshot(page, 'record-home-es', { readme: true });
    await page.goto(`${home}/results`);
    await run.sees(page, 'Resultados de pruebas', 'adult (es)', 'h1');
    await run.sees(page, 'Intervalo habitual', 'adult (es)');
    for (const word of ['Hemoglobin A1c', 'Potassium', 'Bayview Regional Reference Lab']) {
      await run.sees(page, word, 'adult (es): the source\'s own words');
    }
    await run.doesNotSee(page, 'All results', 'adult (es)');
    await run.screenshot(page, 'es-results');
    await page.goto(`${home}/medications`);
    await run.sees(page, 'Medicamentos', 'adult (es)', 'h1');
    await run.sees(page, 'metformin', 'adult (es)');
    await page.goto(`${home}/visits`);
    const visits = await textOf(page, 'main');
    run.check(SPANISH_DATE.test(visits), 'visit dates are written the Spanish way', visits.slice(0, 300));
  });

  if (home) {
    await run.axe(
      rosa,
      ['', '/results', '/medications', '/allergies', '/visits', '/care-team', '/access-log', '/apps'].map((p) => new URL(home + p).pathname),
      'Spanish record pages',
    );
  }

  await run.step('the download\'s summary is in Spanish', async () => {
    await page.goto(home);
    const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('[data-testid=download-zip]').click()]);
    const files = unzipSync(new Uint8Array(readFileSync(await dl.path())));
    const summary = strFromU8(files['summary.html']);
    run.check(summary.includes('<html lang="es">'), 'summary.html is <html lang="es">');
    run.check(summary.includes('Resumen del expediente médico'), 'summary.html speaks Spanish');
    run.check(summary.includes('Hemoglobin A1c'), 'and keeps the record\'s own words');
  });

  await run.step('the switch changes the language and the browser remembers it', async () => {
    await page.goto(`${home}/results`);
    const english = page.locator('[data-testid=language-switch]').getByRole('link', { name: 'English' });
    run.check((await english.getAttribute('lang')) === 'en', 'the switch names English in English (lang="en")');
    await Promise.all([page.waitForLoadState('load'), english.click()]);
    run.check(pathOf(page) === new URL(`${home}/results`).pathname, 'the switch comes back to the same page', page.url());
    run.check((await page.getAttribute('html', 'lang')) === 'en', 'now <html lang="en">');
    await run.sees(page, 'Test results', 'adult (switched to English)', 'h1');
    await page.goto(home);
    await run.sees(page, 'Summary of your record', 'adult (English remembered)', 'h1');
    const spanish = page.locator('[data-testid=language-switch]').getByRole('link', { name: 'Español' });
    await Promise.all([page.waitForLoadState('load'), spanish.click()]);
    await run.sees(page, 'Resumen de su expediente', 'adult (back to Spanish)', 'h1');
  });

  await run.step('the account remembers Spanish on another browser that prefers English', async () => {
    const other = await run.person('adult on an English browser', { locale: 'en-US' });
    await other.page.goto(run.url('/login'));
    await run.sees(other.page, 'User name', 'English browser, signed out');
    await signIn(other.page, adult, 'User name', 'Password', 'Sign in');
    await other.page.goto(run.url('/records'));
    run.check((await other.page.getAttribute('html', 'lang')) === 'es', 'signed in, the pages follow the account: Spanish');
    await run.sees(other.page, 'Resumen de su expediente', 'adult on an English browser', 'h1');
    await other.context.close();
  });

  await run.step('a parent reading a teen\'s record in Spanish sees nothing withheld', async () => {
    const mother = await run.person('parent of sixteen (es-MX)', { locale: 'es-MX' });
    const p = mother.page;
    await p.goto(run.url('/login'));
    await signIn(p, config.parent_of_sixteen, 'Nombre de usuario', 'Contraseña', 'Iniciar sesión');
    await p.goto(run.url('/records'));
    const spanish = p.locator('[data-testid=language-switch]').getByRole('link', { name: 'Español' });
    if ((await spanish.count()) > 0) await Promise.all([p.waitForLoadState('load'), spanish.click()]);
    run.check((await p.getAttribute('html', 'lang')) === 'es', 'the parent reads in Spanish');
    const base = new URL(p.url()).origin + new URL(p.url()).pathname.match(/^\/records\/[^/]+/)[0];
    for (const section of ['', '/results', '/problems', '/medications', '/immunizations', '/visits', '/documents', '/other', '/access-log']) {
      await p.goto(base + section);
      for (const word of MAYA_NEVER) await run.doesNotSee(p, word, 'parent of sixteen (es)');
    }
    await p.goto(`${base}/immunizations`);
    await run.sees(p, 'Tdap', 'parent of sixteen (es)');
    await p.goto(base);
    const [dl] = await Promise.all([p.waitForEvent('download'), p.locator('[data-testid=download-zip]').click()]);
    const files = unzipSync(new Uint8Array(readFileSync(await dl.path())));
    const everything = Object.values(files).map((f) => strFromU8(f)).join('\n').toLowerCase();
    run.check(strFromU8(files['summary.html']).includes('<html lang="es">'), 'the parent\'s summary is in Spanish');
    for (const word of MAYA_NEVER) {
      run.check(!everything.includes(word.toLowerCase()), `the parent's Spanish download holds no "${word}"`);
    }
    await mother.context.close();
  });

  if (home) await rightsPages(rosa, home);
}

/// The rights pages in Spanish (share links, corrections, disclosures, proxies, notices):
/// each is Spanish (`<html lang="es">`, a Spanish sentence, no English one left), its dates
/// are written the Spanish way, and axe finds nothing serious on it.
async function rightsPages(rosa, home) {
  const { page } = rosa;
  const adult = config.adult;
  const record = new URL(home).pathname;
  let shlink = null;

  await run.step('share links in Spanish: the form, the made link and the list', async () => {
    await page.goto(`${home}/share`);
    await isSpanish(page, 'Compartir su expediente', ['Share your record', 'Make the link', 'Links you have made']);
    await page.locator('input[name=section][value=allergies]').check();
    await page.locator('#label').fill('Para la escuela');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Crear el enlace' }).click()]);
    await isSpanish(page, 'Su enlace para compartir está listo', ['Your share link is ready', 'The same link for SMART Health Links apps']);
    run.check(SPANISH_DATE.test(await textOf(page, 'main')), 'the made link says until when, the Spanish way');
    shlink = await page.locator('[data-testid=share-shlink]').inputValue();
    run.check(shlink.startsWith('shlink:/'), 'a SMART Health Link is made from the Spanish page', shlink.slice(0, 20));
    await page.goto(`${home}/share`);
    await isSpanish(page, 'Para la escuela', ['Works until', 'Revoke “', 'Links you have made']);
    await run.sees(page, 'Enlaces que usted creó', 'adult (es)');
    await run.axe(rosa, [`${record}/share`], 'adult (es), the form and a link made');
    await run.axeAfter(rosa, 'adult (es), a link made', async (a, check) => {
      await a.goto(`${home}/share`);
      await a.locator('input[name=section][value=immunizations]').check();
      await a.locator('#label').fill('Para el médico');
      await Promise.all([a.waitForLoadState('load'), a.getByRole('button', { name: 'Crear el enlace' }).click()]);
      await isSpanish(a, 'Su enlace para compartir está listo', ['Your share link is ready']);
      await check();
    });
  });

  await run.step("the recipient's plain web view in Spanish", async () => {
    const school = await run.person('recipient (es-MX)', { locale: 'es-MX' });
    const p = school.page;
    await p.goto(run.url('/share'));
    await isSpanish(p, 'Abrir un expediente médico compartido', ['Open a shared health record', 'The share link']);
    await p.locator('#shlink').fill('shlink:/not-a-link');
    await p.locator('#recipient').fill('Escuela Lincoln');
    await Promise.all([p.waitForLoadState('load'), p.getByRole('button', { name: 'Abrir el expediente' }).click()]);
    await isSpanish(p, 'Eso no es un enlace para compartir', ['That is not a share link'], '[data-testid=share-message]');
    await openShared(p, shlink);
    await isSpanish(p, 'Expediente médico compartido: Para la escuela', ['Shared health record', 'None shared']);
    await run.sees(p, 'Alergias', 'recipient (es)', 'h2');
    await run.sees(p, 'Penicillin', "recipient (es): the source's own words");
    await run.axe(school, ['/share'], 'recipient (es)');
    await run.axeAfter(school, 'recipient (es)', async (a, check) => {
      await a.goto(run.url('/share'));
      await openShared(a, shlink);
      run.check((await a.getAttribute('html', 'lang')) === 'es', 'the shared record checked by axe is Spanish');
      await check();
    });
    await school.context.close();
  });

  await run.step('corrections in Spanish: the request, its status, a denial and the statement of disagreement', async () => {
    await page.goto(`${home}/corrections`);
    await isSpanish(page, '¿Qué se debe corregir y cómo?', ['What should be corrected', 'Send the request', 'No requests yet']);
    await page.locator('#correction-text').fill('Mi dirección ahora es Calle del Puerto 12.');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Enviar la solicitud' }).click()]);
    await page.goto(`${home}/corrections`);
    const waiting = await textOf(page, '[data-testid=correction-request]');
    run.check(/En espera de respuesta/.test(waiting) && SPANISH_DATE.test(waiting), 'the request waits, due by a Spanish date', waiting);
    await isSpanish(page, 'Calle del Puerto 12', ['Waiting for an answer', 'Your requests']);
    // HIM deny it (the staff API), then the patient may disagree.
    const staff = { authorization: `Bearer ${config.staff_token}` };
    const queue = await (await fetch(run.url('/admin/corrections'), { headers: staff })).json();
    const id = (queue.requests || []).find((r) => /Calle del Puerto/.test(JSON.stringify(r)))?.id ?? queue.requests?.[0]?.id;
    const decided = await fetch(run.url(`/admin/corrections/${id}/decision`), {
      method: 'POST',
      headers: { ...staff, 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'deny', reason: 'The record is accurate.', by: 'HIM desk' }),
    });
    run.check(decided.status === 200, 'HIM deny the request', `status ${decided.status}`);
    await page.goto(`${home}/corrections`);
    await isSpanish(page, 'Puede presentar una declaración de desacuerdo', ['You may file a statement', 'File the statement', 'Denied']);
    await run.sees(page, 'Rechazada', 'adult (es)', '[data-testid=correction-status]');
    await run.sees(page, 'The record is accurate.', "adult (es): HIM's own words", '[data-testid=correction-reason]');
    await run.axe(rosa, [`${record}/corrections`], 'adult (es), a denied request');
    const statement = page.locator('[data-testid=correction-request] textarea');
    await statement.fill('No estoy de acuerdo: me mudé en 2025.');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Presentar la declaración' }).click()]);
    await page.goto(`${home}/corrections`);
    await isSpanish(page, 'Su declaración de desacuerdo: No estoy de acuerdo', ['Your statement of disagreement'], '[data-testid=correction-disagreement]');
    await run.axe(rosa, [`${record}/corrections`], 'adult (es), a statement of disagreement');
  });

  await run.step('the accounting of disclosures in Spanish, as a page and printable', async () => {
    await page.goto(`${home}/disclosures`);
    await isSpanish(page, 'Divulgaciones de su expediente', ['Disclosures of your record', 'Someone who opened a share link', 'Shared by the patient', 'Printable copy']);
    const rows = await textOf(page, '[data-testid=section-disclosures]');
    run.check(/Alguien que abrió un enlace para compartir/.test(rows) && /Compartido por el paciente: “Para la escuela”/.test(rows), "the share link's opening is listed in Spanish", rows.slice(0, 400));
    run.check(SPANISH_DATE.test(rows), 'with its date the Spanish way', rows.slice(0, 200));
    await page.goto(`${home}/disclosures/print`);
    await isSpanish(page, 'Registro de divulgaciones', ['Accounting of disclosures', 'Someone who opened a share link', 'Questions:']);
    await run.axe(rosa, [`${record}/disclosures`, `${record}/disclosures/print`], 'adult (es)');
  });

  let token = null;
  await run.step('proxies in Spanish: inviting, the invitation accepted in Spanish, the proxies list', async () => {
    await page.goto(run.url('/account/proxies'));
    await isSpanish(page, 'Invitar a alguien', ['Invite someone', 'Send the invitation', 'No one else']);
    const invitee = config.parent_of_sixteen;
    await page.locator('#email').fill(invitee.username);
    await page.locator('#relationship').selectOption('FAMMEMB');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Enviar la invitación' }).click()]);
    const sent = await textOf(page, 'main');
    run.check(/Enviamos la invitación/.test(sent), 'the invitation is sent (in Spanish)', sent.slice(0, 200));
    run.check(/familiar, enviada el/.test(sent) && SPANISH_DATE.test(sent), 'the invitation: relationship in words, date the Spanish way', sent);
    run.check(!/FAMMEMB|\d{4}-\d{2}-\d{2}/.test(sent), 'no code and no ISO date on the page', sent);
    token = await invitationToken(invitee.username);
    const invited = await run.person('invited proxy (es-MX)', { locale: 'es-MX' });
    const p = invited.page;
    await p.goto(run.url(`/proxy-invitations/accept?token=${token}`));
    await isSpanish(p, 'inicie sesión', ['Accept an invitation', 'sign in']);
    await run.axe(invited, [`/proxy-invitations/accept?token=${token}`], 'invited proxy (es), signed out');
    await p.goto(run.url('/login'));
    await signIn(p, invitee, 'Nombre de usuario', 'Contraseña', 'Iniciar sesión');
    await p.goto(run.url(`/proxy-invitations/accept?token=${token}`));
    await isSpanish(p, 'Para aceptar, escriba la fecha de nacimiento', ['To accept, enter the date of birth', 'Accept the invitation']);
    await run.axe(invited, [`/proxy-invitations/accept?token=${token}`], 'invited proxy (es)');
    await p.getByLabel('Fecha de nacimiento de esa persona').fill('1970-01-01');
    await Promise.all([p.waitForLoadState('load'), p.getByRole('button', { name: 'Aceptar la invitación' }).click()]);
    await isSpanish(p, 'Esa fecha de nacimiento no coincide', ['does not match', 'more time'], '[role=alert]');
    await p.getByLabel('Fecha de nacimiento de esa persona').fill(adult.birth_date);
    await Promise.all([p.waitForLoadState('load'), p.getByRole('button', { name: 'Aceptar la invitación' }).click()]);
    run.check(/^\/records\/[^/]+$/.test(pathOf(p)), 'the right birth date opens the record', p.url());
    await invited.context.close();
    await page.goto(run.url('/account/proxies'));
    const list = await textOf(page, 'main');
    run.check(/Sus representantes/.test(list) && /familiar, desde el/.test(list) && /hasta el/.test(list), 'the new proxy is listed in Spanish', list);
    run.check(SPANISH_DATE.test(list) && !/\d{4}-\d{2}-\d{2}|FAMMEMB|since|until/.test(list), 'with Spanish dates and words only', list);
    await isSpanish(page, 'Renovar el acceso de', ['Renew access', 'End access', 'Your proxies']);
    await run.axe(rosa, ['/account/proxies'], 'adult (es), with a proxy');
  });

  await run.step('notice preferences in Spanish', async () => {
    await page.goto(run.url('/account/notices'));
    await isSpanish(page, 'Los correos que le enviamos', ['Mails we send you', 'Send me a mail when', 'Back to your account']);
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Guardar' }).click()]);
    await isSpanish(page, 'Sus preferencias se guardaron', ['Your choices are saved']);
    await run.axe(rosa, ['/account/notices'], 'adult (es)');
  });
}

/// The page is `<html lang="es">`, shows `spanish` (in `selector`) and none of `english`.
async function isSpanish(page, spanish, english, selector = 'body') {
  run.check((await page.getAttribute('html', 'lang')) === 'es', `${pathOf(page)} is <html lang="es">`);
  await run.sees(page, spanish, 'Spanish', selector);
  for (const word of english) await run.doesNotSee(page, word, 'Spanish (no English left)', 'main');
}

/// Fills the viewer's form with the link and opens it.
async function openShared(page, shlink) {
  await page.locator('#shlink').fill(shlink);
  await page.locator('#recipient').fill('Escuela Lincoln');
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Abrir el expediente' }).click()]);
}

/// The token of the newest invitation mailed to `to` (from the gateway's mail folder).
async function invitationToken(to) {
  for (let i = 0; i < 1500; i++) {
    const found = readdirSync(config.mail_dir)
      .filter((n) => n.endsWith('.eml'))
      .map((n) => decodedMail(readFileSync(join(config.mail_dir, n), 'utf8')))
      .filter((m) => m.to.includes(to))
      .map((m) => m.body.match(/\/proxy-invitations\/accept\?token=([0-9A-Za-z_-]+)/)?.[1])
      .filter(Boolean);
    if (found.length) return found[found.length - 1];
    await new Promise((r) => setTimeout(r, 20));
  }
  run.fail(`no invitation mail to ${to}`);
  return '';
}

/// A mail file's To and its body, undone from base64 or quoted-printable.
function decodedMail(raw) {
  const to = raw.match(/^To: (.*)$/im)?.[1] ?? '';
  const [head, ...rest] = raw.split(/\r?\n\r?\n/);
  let body = rest.join('\n\n');
  if (/Content-Transfer-Encoding: base64/i.test(head)) body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  else body = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
  return { to, body };
}

async function signIn(page, who, userLabel, passwordLabel, button) {
  await page.getByLabel(userLabel).fill(who.username);
  await page.getByLabel(passwordLabel, { exact: true }).fill(who.password);
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: button }).click()]);
  if (!run.check(pathOf(page) !== '/login', `${who.username} signs in`, page.url())) throw new Error('sign-in failed');
}

/// Opens the verification link mailed to `username` (a Spanish mail: quoted-printable or
/// base64 UTF-8); back on /enroll.
async function confirmEmail(page, username) {
  let link = null;
  for (let i = 0; i < 1500 && !link; i++) {
    for (const name of readdirSync(config.mail_dir).filter((n) => n.endsWith('.eml'))) {
      const raw = readFileSync(join(config.mail_dir, name), 'utf8');
      if (!(raw.match(/^To: (.*)$/im)?.[1] ?? '').includes(username)) continue;
      const [head, ...rest] = raw.split(/\r?\n\r?\n/);
      let body = rest.join('\n\n');
      if (/Content-Transfer-Encoding: base64/i.test(head)) body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
      else body = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
      const found = body.match(/http\S*\/verify-email\?token=[0-9a-f]{64}/);
      if (found) {
        link = found[0];
        run.check(/Hola/.test(body), 'the verification mail is in Spanish');
      }
    }
    if (!link) await new Promise((r) => setTimeout(r, 20));
  }
  if (!run.check(link !== null, `the verification mail for ${username} arrived`)) return;
  await page.goto(link);
  run.check(/confirmado/i.test(await textOf(page, 'main')), 'the link confirms the address (in Spanish)', page.url());
  await page.goto(run.url('/enroll'));
}

/// The medical-record-number form of `/enroll`, in Spanish.
async function enrollForm(page, mrn, birthDate, family) {
  const form = page.locator('form', { has: page.getByLabel('Número de expediente médico') });
  await form.getByLabel('Número de expediente médico').fill(mrn);
  await form.getByLabel('Fecha de nacimiento').fill(birthDate);
  await form.getByLabel('Apellido').fill(family);
  await Promise.all([page.waitForLoadState('load'), form.getByRole('button', { name: 'Conectar mi expediente' }).click()]);
}
