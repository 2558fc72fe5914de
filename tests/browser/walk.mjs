// The user guide (../../shared/seeds, « Guide d'inscription ») walked in a real Chromium, as
// a person would: fields found by their visible labels, buttons by their visible names, the
// e-mail and SMS codes read from the outbox page. For each of de, fr, it, en, at phone and
// desktop size, with JavaScript on (axe-core checks every page) and off.
//
// Needs a running `connect dev` (see run.sh) and, in the environment: CONNECT_TEST_BIN (the
// binary, for `connect admin`), CONNECT_DATA_DIR (its data), and optionally SCREENSHOTS=dir.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { walkAccount } from './walks/account.mjs';
import { passkeyWalk } from './walks/passkey.mjs';
import { consoleWalk } from './walks/console.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const IDP = process.env.IDP_URL ?? 'http://127.0.0.1:8080';
const PORTAL = process.env.PORTAL_URL ?? 'http://127.0.0.1:8090';
const BIN = process.env.CONNECT_TEST_BIN;
const SCREENSHOTS = process.env.SCREENSHOTS;
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const SIZES = { phone: { width: 375, height: 812 }, desktop: { width: 1280, height: 800 } };
const LANGS = (process.env.LANGS ?? 'fr,de,it,en').split(',');

/** The words of the pages, from the same Fluent files the server uses. */
function words(lang) {
  const out = {};
  for (const file of ['main.ftl', 'portal.ftl']) {
    for (const line of readFileSync(join(root, 'locales', lang, file), 'utf8').split('\n')) {
      const m = line.match(/^([a-z0-9-_]+) = (.*)$/);
      if (m) out[m[1]] = m[2];
    }
  }
  return out;
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A field by its label as shown: the text, then the required-field star if any. */
const label = (page, text) => page.getByLabel(new RegExp(`^${escape(text)}( \\*)?$`));
const button = (page, text) => page.getByRole('button', { name: text, exact: true });

/** A valid AHV number (EAN-13 check digit) for walk `n`. */
function ahv(n) {
  const body = `756${String(900000000 + n).padStart(9, '0')}`;
  const sum = [...body].reduce((s, d, i) => s + Number(d) * (i % 2 ? 3 : 1), 0);
  const check = (10 - (sum % 10)) % 10;
  return `${body.slice(0, 3)}.${body.slice(3, 7)}.${body.slice(7, 11)}.${body.slice(11)}${check}`;
}

function admin(...args) {
  return execFileSync(BIN, ['admin', ...args], { encoding: 'utf8', env: process.env });
}

/** The latest text sent to `to`, from the outbox page. */
async function outbox(context, to) {
  const page = await context.newPage();
  await page.goto(`${IDP}/_dev/outbox`);
  const item = page.locator('article.outbox-item').filter({ hasText: to }).first();
  const text = await item.locator('pre').textContent();
  await page.close();
  return text;
}

const failures = [];
let checked = 0;

async function axe(page, where) {
  // Evaluated through the driver, not as a page script: the pages' CSP allows only connect's own.
  await page.evaluate(AXE);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  checked += 1;
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') {
      failures.push(`${where}: axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`);
    }
  }
}

async function walk(browser, lang, size, js, n) {
  const t = words(lang);
  const tag = `${lang}/${size}/${js ? 'js' : 'nojs'}`;
  const context = await browser.newContext({
    viewport: SIZES[size],
    locale: lang === 'de' ? 'de-CH' : `${lang}-CH`,
    javaScriptEnabled: js,
    acceptDownloads: true,
    // Each walk comes from its own address, as different people would.
    extraHTTPHeaders: { 'x-forwarded-for': `10.1.${n}.${js ? 1 : 2}` },
  });
  if (SCREENSHOTS) mkdirSync(SCREENSHOTS, { recursive: true });
  const page = await context.newPage();
  let step = 0;
  const seen = async (name) => {
    step += 1;
    if (js) {
      await axe(page, `${tag} ${name}`);
      // Responsive: nothing wider than the screen, so no sideways scrolling on a phone.
      const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
      if (scroll > client) failures.push(`${tag} ${name}: the page is ${scroll}px wide on a ${client}px screen`);
      if (size === 'phone') {
        // Targets a finger can hit: controls and menu links at least 44 px high.
        const small = await page.evaluate(() =>
          [...document.querySelectorAll('button, select, input:not([type=hidden]):not([type=checkbox]), nav a')]
            .filter((e) => e.getBoundingClientRect().height < 44)
            .map((e) => `${e.tagName.toLowerCase()} "${(e.textContent || e.name || '').trim().slice(0, 30)}" ${Math.round(e.getBoundingClientRect().height)}px`));
        for (const s of small) failures.push(`${tag} ${name}: target too small: ${s}`);
      } else {
        // Text enlarged to 200 % (WCAG 1.4.4) still fits the screen.
        const [wide, screen] = await page.evaluate(() => {
          const html = document.documentElement;
          const before = html.style.fontSize;
          html.style.fontSize = '225%'; // twice the style sheet's 112.5 %
          const out = [html.scrollWidth, html.clientWidth];
          html.style.fontSize = before;
          return out;
        });
        if (wide > screen) failures.push(`${tag} ${name}: at 200 % text the page is ${wide}px wide on ${screen}px`);
      }
    }
    if (SCREENSHOTS && js && lang === 'fr') {
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, `${size}-${String(step).padStart(2, '0')}-${name}.png`), fullPage: true });
    }
    const html = await page.locator('html').getAttribute('lang');
    if (html !== lang) failures.push(`${tag} ${name}: <html lang="${html}">`);
  };

  // Pages off the main path: the terms of use, an expired enrolment, the outbox.
  if (js) {
    for (const [name, url] of [
      ['terms', `${IDP}/AK00/terms`],
      ['register-expired', `${IDP}/AK00/register/expired/email`],
      ['dev-outbox', `${IDP}/_dev/outbox`],
    ]) {
      const other = await context.newPage();
      await other.goto(url);
      await axe(other, `${tag} ${name}`);
      if (SCREENSHOTS && lang === 'fr') {
        await other.screenshot({ path: join(SCREENSHOTS, `${size}-00-${name}.png`), fullPage: true });
      }
      await other.close();
    }
  }

  // The caisse: a person in the register and a letter with a code.
  const number = ahv(n * 2 + (js ? 0 : 1));
  admin('person', 'add', '--realm', 'AK00', '--ahv', number, '--given-name', 'Anna', '--family-name', 'Bernasconi-Rossi Müller',
    '--birth-date', '1950-03-14', '--language', lang);
  const code = admin('code', 'issue', '--realm', 'AK00', '--ahv', number).split('\n')[0];
  // Realistic long values: an address of more than 40 characters (the portal's overview once ran
  // past the screen's edge with one), a double family name, a long document title.
  const email = `jeanne-marie.walk-${lang}-${size}-${js ? 'js' : 'nojs'}.1795919915006@example-caisse.ch`;
  const mobile = `079 ${String(100 + n).padStart(3, '0')} ${js ? '11' : '22'} ${String(10 + n).slice(-2)}`;
  const password = 'Aare-Ufer-Spaziergang-2026';

  // The portal sends the person to the IdP's login page, which leads to the enrolment.
  await page.goto(`${PORTAL}/`);
  await seen('login');
  await page.getByRole('link', { name: t['login-first-time'] }).click();
  // 1. The letter's code.
  await seen('register-code');
  await label(page, t['enrol-code-label']).fill(code);
  await button(page, t['continue']).click();
  // 2. The address.
  await seen('register-email');
  await label(page, t['enrol-email-label']).fill(email);
  await button(page, t['continue']).click();
  // 3. The code of the mail.
  await seen('register-confirm');
  const mail = await outbox(context, email);
  const mailCode = mail.match(/[A-Z2-9]{4} [A-Z2-9]{4} [A-Z2-9]{4}/)[0];
  await label(page, t['enrol-code-label']).fill(mailCode);
  await button(page, t['continue']).click();
  // 4. The account: names prefilled, language, terms.
  await seen('register-account');
  if ((await label(page, t['enrol-given-name']).inputValue()) !== 'Anna') failures.push(`${tag}: given name not prefilled`);
  await label(page, t['enrol-language']).selectOption(lang);
  await label(page, t['enrol-terms-accept']).check();
  await button(page, t['continue']).click();
  // 5. The password.
  await seen('register-password');
  await label(page, t['enrol-password-label']).fill(password);
  await label(page, t['enrol-password-confirm']).fill(password);
  await button(page, t['continue']).click();
  // 6. The mobile number.
  await seen('register-phone');
  await label(page, t['enrol-phone-label']).fill(mobile);
  await button(page, t['continue']).click();
  // 7. The SMS code.
  await seen('register-sms');
  const e164 = `+41${mobile.replace(/\s/g, '').slice(1)}`;
  const sms = (await outbox(context, e164)).match(/\b\d{6}\b/)[0];
  await label(page, t['enrol-sms-label']).fill(sms);
  await button(page, t['enrol-sms-submit']).click();
  // The login page: e-mail, password, then the new SMS code.
  await seen('login-after-enrolment');
  await label(page, t['login-email']).fill(email);
  await label(page, t['login-password']).fill(password);
  await button(page, t['login-submit']).click();
  await seen('login-sms');
  const loginSms = (await outbox(context, e164)).match(/\b\d{6}\b/)[0];
  await label(page, t['login-sms-label']).fill(loginSms);
  await button(page, t['login-sms-submit']).click();
  // Back at the portal: the overview, then « Mes documents » with a document to download.
  await page.waitForURL(`${PORTAL}/**`);
  await seen('portal-overview');
  await deliver(number);
  await page.getByRole('link', { name: t['portal-documents'], exact: true }).first().click();
  await seen('portal-documents');
  const link = page.locator('ul.documents a').first();
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const bytes = readFileSync(await download.path());
  if (!bytes.subarray(0, 5).equals(Buffer.from('%PDF-'))) failures.push(`${tag}: the download is not a PDF`);
  await context.close();
  console.log(`ok ${tag}: enrolled, logged in with e-mail, password and SMS, downloaded ${download.suggestedFilename()}`);
  // The account pages in every language on a phone with JavaScript (the gate's changes
  // differ by size: French also on a desktop), and once without JavaScript: each walk of
  // them takes a minute or two, and CI's time is bounded.
  if ((js && (size === 'phone' || lang === 'fr')) || (!js && lang === 'fr' && size === 'phone')) {
    await walkAccount({ browser, lang, size, js, n, root, IDP, BIN, axe, failures, outbox, screenshots: SCREENSHOTS });
  }
}

/** A caisse system delivers a PDF for the person through the portal's API. */
async function deliver(number) {
  const auth = Buffer.from('caisse-docs:caisse-docs-secret').toString('base64');
  const token = await fetch(`${IDP}/AK00/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${auth}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=documents%3Awrite',
  }).then((r) => r.json());
  const form = new FormData();
  const metadata = { realm: 'AK00', ahv: number, category: 'decision', titles: {
    fr: "Décision concernant la rente de vieillesse et l'allocation pour impotent, période 2025–2026",
    de: 'Verfügung über die Altersrente und die Hilflosenentschädigung, Zeitraum 2025–2026',
    it: "Decisione concernente la rendita di vecchiaia e l'assegno per grandi invalidi, periodo 2025–2026",
    en: 'Decision on the old-age pension and the helplessness allowance, period 2025–2026',
  }, issue_date: new Date().toISOString().slice(0, 10) };
  form.append('metadata', new Blob([JSON.stringify(metadata)], { type: 'application/json' }));
  const pdf = readFileSync(join(here, 'sample.pdf'));
  form.append('file', new Blob([pdf], { type: 'application/pdf' }), 'decision.pdf');
  const res = await fetch(`${PORTAL}/api/v1/documents`, { method: 'POST', headers: { authorization: `Bearer ${token.access_token}` }, body: form });
  if (res.status !== 201) throw new Error(`delivery: ${res.status} ${await res.text()}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let n = 0;
// WALKS=app,passkey (any of main, app, passkey, recovery, console) runs only those, while working on them.
const only = (name) => !process.env.WALKS || process.env.WALKS.split(',').includes(name);
try {
  for (const js of [true, false]) {
    for (const lang of LANGS) {
      for (const size of Object.keys(SIZES)) {
        n += 1;
        if (only('main')) await walk(browser, lang, size, js, n);
      }
    }
  }
  if (only('app')) await (await import('./walks/app.mjs')).default({ browser, IDP, BIN, outbox, axe, failures, langs: LANGS, screenshots: SCREENSHOTS });
  if (only('passkey')) await passkeyWalk({ browser, bin: BIN, root, axe, failures, langs: LANGS, screenshots: SCREENSHOTS });
  if (only('console')) await consoleWalk({ browser, bin: BIN, root, axe, failures, langs: LANGS, screenshots: SCREENSHOTS });
  if (only('recovery')) await (await import('./walks/recovery.mjs')).walkRecovery(browser, { IDP, outbox, axe, failures, langs: LANGS, screenshots: SCREENSHOTS });
} catch (e) {
  failures.push(`walk ${n} stopped: ${e.stack ?? e}`);
} finally {
  await browser.close();
}
console.log(`${checked} pages checked with axe-core`);
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log('all walks passed');
