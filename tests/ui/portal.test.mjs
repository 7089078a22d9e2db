// Browser tests of the web portal: Debian's chromium driven by playwright-core, against a
// running gateway. tests/e2e/ui.rs starts the platform, deploys the functions these tests
// expect and runs `node --test tests/ui/`; to run them by hand against a platform of your own:
//
//   IRONFAAS_URL=http://127.0.0.1:8080 SCREENSHOT_DIR=/tmp/shots node --test tests/ui/
//
// Environment:
//   IRONFAAS_URL                       the gateway (required)
//   IRONFAAS_USER, IRONFAAS_PASSWORD   basic-auth credentials, when the gateway asks for them
//   SCREENSHOT_DIR                     where the PNG screenshots go (default: a temp dir)
//   CHROMIUM                           the browser (default /usr/bin/chromium)
//
// Expected on the gateway (deployed by tests/e2e/ui.rs), with its function store and queue:
//   hello  python3-http, image ui-hello:1: logs "hello got BODY", answers {"hello": BODY} as
//          JSON, and 500 when the query has fail=1; com.openfaas.retry.attempts is 1, so a
//          failed asynchronous call is dead-lettered at once
//   shout  bash-streaming, image ui-shout:1: answers its body in upper case

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.env.IRONFAAS_URL || '').replace(/\/+$/, '');
const USER = process.env.IRONFAAS_USER || '';
const PASSWORD = process.env.IRONFAAS_PASSWORD || '';
const SHOTS = process.env.SCREENSHOT_DIR || path.join(os.tmpdir(), 'ironfaas-ui-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const NS = 'openfaas-fn';

// Flags for a closed network: no background traffic, no updates, no sync, no QUIC.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** fetch() against the gateway, with the credentials when there are any. */
function api(pathname, init = {}) {
  const headers = new Headers(init.headers || {});
  if (USER) headers.set('Authorization', `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`);
  return fetch(`${BASE}${pathname}`, { ...init, headers });
}

/** Polls check() until it returns a truthy value or `ms` pass. */
async function eventually(what, ms, check) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
}

let context;
let profile;

/**
 * A new tab that records page errors and CSP violations, to be checked by done(); setup runs
 * before the first page loads (to route requests).
 */
async function open(urlPath, viewport = { width: 1280, height: 900 }, setup = null) {
  const page = await context.newPage();
  if (setup) await setup(page);
  await page.setViewportSize(viewport);
  page.setDefaultTimeout(15000);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    // Answers with an error status are expected (a 404 function, a 409 deploy, a failing
    // call) and shown on the page; anything else logged as an error is a bug.
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.problems = problems;
  await page.goto(/^https?:/.test(urlPath) ? urlPath : `${BASE}${urlPath}`);
  return page;
}

/** Checks the tab saw no script error, then closes it. */
async function done(page) {
  const problems = page.problems.filter((p) => !/net::ERR_ABORTED|aborted/i.test(p));
  await page.close();
  assert.deepEqual(problems, [], 'the page logged errors');
}

/**
 * Runs a test's steps on a new tab; when one fails, a screenshot of the tab and the text of
 * its page go with the error (failure-NAME.png beside the other screenshots).
 */
async function onPage(name, urlPath, steps, { viewport, setup } = {}) {
  const page = await open(urlPath, viewport, setup);
  try {
    await steps(page);
  } catch (e) {
    const file = path.join(SHOTS, `failure-${name}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    const text = await page.evaluate(() => document.body.innerText).catch(() => '(no page)');
    e.message = `${e.message}\n--- at ${page.url()}; screenshot ${file}; page text:\n${text.slice(0, 4000)}\n--- page errors: ${page.problems.join('; ') || 'none'}`;
    await page.close().catch(() => {});
    throw e;
  }
  await done(page);
}

async function shot(page, name, fullPage = true) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
}

describe('web portal', { concurrency: false }, () => {
  before(async () => {
    assert.ok(BASE, 'IRONFAAS_URL is not set: run these tests through `cargo test -p ironfaas --test e2e ui` or point IRONFAAS_URL at a gateway');
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-test-deps (Debian package chromium)`);
    fs.mkdirSync(SHOTS, { recursive: true });
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ironfaas-ui-profile-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 900 },
      httpCredentials: USER ? { username: USER, password: PASSWORD } : undefined,
      locale: 'en-GB',
      timezoneId: 'UTC',
    });
  });

  after(async () => {
    if (context) await context.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  it('redirects / to the portal and lists the functions', () =>
    onPage('functions', '/', async (page) => {
      assert.match(page.url(), /\/ui\/$/);
      const hello = page.locator('#functions-table tbody tr[data-function="hello"]');
      const shout = page.locator('#functions-table tbody tr[data-function="shout"]');
      await hello.waitFor();
      await shout.waitFor();
      // The first Tab reaches the skip link, which moves on to the content.
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
      await page.keyboard.press('Enter');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
      assert.match(await hello.innerText(), /ui-hello:1/);
      assert.match(await shout.innerText(), /ui-shout:1/);
      await page.locator('#functions-table tr[data-function="hello"] .chip', { hasText: '1/1' }).waitFor();
      await page.locator('#gateway-info', { hasText: /^v\d/ }).waitFor();

      await page.getByRole('searchbox', { name: 'Filter functions by name' }).fill('sho');
      await page.locator('#functions-table tbody tr[data-function="hello"]').waitFor({ state: 'detached' });
      assert.equal(await page.locator('#functions-table tbody tr').count(), 1);
      await page.getByRole('searchbox', { name: 'Filter functions by name' }).fill('nothing-like-this');
      await page.getByText('No function matches “nothing-like-this”').waitFor();
      await page.getByRole('searchbox', { name: 'Filter functions by name' }).fill('');
      await hello.waitFor();

      // Keyboard: a function's link opens its page, whose heading takes the focus.
      await page.focus(`a[data-focus-key="fn:hello.${NS}"]`);
      await page.keyboard.press('Enter');
      await page.waitForURL(/\/ui\/functions\/hello$/);
      await page.locator('h1', { hasText: 'hello' }).waitFor();
      assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1');
      await page.goBack();
      await hello.waitFor();
    }));

  it('works when opened as http://USER:PASSWORD@HOST/ui/', () => {
    // The page's base URL then carries the credentials, which fetch() refuses to use.
    const url = new URL(`${BASE}/ui/`);
    url.username = USER || 'admin';
    url.password = PASSWORD || 'unused';
    return onPage('credentials', url.href, async (page) => {
      await page.locator('#functions-table tbody tr[data-function="hello"]').waitFor();
      await page.locator('a.fn-name', { hasText: 'hello' }).click();
      await page.locator('#logs[data-state="live"]').waitFor();
      await page.getByRole('button', { name: 'Send' }).click();
      await page.locator('#invoke-status', { hasText: '200' }).waitFor();
    });
  });

  it('invokes a function and shows its answer', () =>
    onPage('invoke', '/ui/functions/shout', async (page) => {
      await page.locator('h1', { hasText: 'shout' }).waitFor();
      await page.getByLabel('Body', { exact: true }).fill('hello from the browser');
      await page.getByRole('button', { name: 'Send' }).click();
      await page.locator('#invoke-status', { hasText: '200' }).waitFor();
      assert.equal((await page.locator('.response-body').innerText()).trim(), 'HELLO FROM THE BROWSER');
      assert.match(await page.locator('#invoke-duration').innerText(), /^\d+(\.\d+)? (ms|s)$/);

      // A JSON answer is pretty-printed; a header and a query string reach the function.
      await page.goto(`${BASE}/ui/functions/hello`);
      await page.locator('h1', { hasText: 'hello' }).waitFor();
      await page.getByLabel('Headers').fill('X-Test: yes');
      await page.getByLabel('Body', { exact: true }).fill('ada');
      await page.getByLabel('Body', { exact: true }).press('Control+Enter');
      await page.locator('#invoke-status', { hasText: '200' }).waitFor();
      assert.deepEqual(JSON.parse(await page.locator('.response-body').innerText()), { hello: 'ada' });
      await page.getByLabel('Path', { exact: true }).fill('/?fail=1');
      await page.getByRole('button', { name: 'Send' }).click();
      await page.locator('#invoke-status', { hasText: '500' }).waitFor();
    }));

  it('follows the logs and charts the traffic', () =>
    onPage('logs', '/ui/functions/hello', async (page) => {
      await page.locator('#logs[data-state="live"]').waitFor();
      const marker = `marker-${Date.now()}`;
      await page.getByLabel('Body', { exact: true }).fill(marker);
      await page.getByRole('button', { name: 'Send' }).click();
      await page.locator('#invoke-status', { hasText: '200' }).waitFor();
      await page.locator('#logs li', { hasText: `hello got ${marker}` }).waitFor();

      // Turning follow off shows the last lines once; on again, it follows again.
      await page.getByRole('switch', { name: 'Follow' }).uncheck();
      await page.locator('#logs-status', { hasText: 'not following' }).waitFor();
      await page.locator('#logs li', { hasText: `hello got ${marker}` }).waitFor();
      await page.getByRole('switch', { name: 'Follow' }).check();
      await page.locator('#logs[data-state="live"]').waitFor();
      const second = `${marker}-again`;
      assert.equal((await api('/function/hello', { method: 'POST', body: second })).status, 200);
      await page.locator('#logs li', { hasText: `hello got ${second}` }).waitFor();

      // Some traffic, some of it failing, until the charts have a line and the figures a rate.
      const stop = Date.now() + 12000;
      let sent = 0;
      const traffic = (async () => {
        while (Date.now() < stop) {
          await api(`/function/hello${sent % 5 === 4 ? '?fail=1' : ''}`, { method: 'POST', body: `load ${sent}` });
          sent += 1;
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      // A line is drawn once it has two points; a flat one has no height, which Playwright
      // counts as hidden, so the test reads the path instead of waiting for it to be visible.
      const line = (n) => page.locator('.chart svg path.line.s0').nth(n);
      const drawn = (n, ms) => eventually(`line ${n} of the charts`, ms, async () => (await line(n).count()) > 0 && /L/.test((await line(n).getAttribute('d')) || ''));
      await drawn(0, 20000);
      await traffic;
      const figure = async (n) => parseFloat(await page.locator('#fn-stats .stat .stat-value').nth(n).innerText());
      await eventually('a request rate above 0', 15000, async () => (await figure(0)) > 0);
      await eventually('an error rate above 0', 15000, async () => (await figure(1)) > 0);
      await drawn(1, 15000);
      await shot(page, 'function');
    }));

  it('deploys a function from the store and removes it', () =>
    onPage('deploy', '/ui/deploy', async (page) => {
      const row = page.locator('#store-table tr[data-image="ui-shout:1"]');
      await row.waitFor();
      // Nothing picked: the form cannot be sent.
      assert.equal(await page.getByRole('button', { name: 'Deploy', exact: true }).isDisabled(), true);
      await row.click();
      assert.equal(await page.getByLabel('Function name').inputValue(), 'ui-shout');
      await page.getByLabel('Function name').fill('Bad_Name');
      await page.getByRole('button', { name: 'Deploy', exact: true }).click();
      await page.locator('#deploy-error', { hasText: 'not a valid function name' }).waitFor();

      await page.getByLabel('Function name').fill('shout-copy');
      await page.getByLabel('Environment').fill('GREETING=hi\nMODE=copy');
      await page.getByLabel('Labels').fill('team=portal');
      await page.getByLabel('Min replicas').fill('1');
      await page.getByLabel('Max replicas').fill('2');
      await shot(page, 'deploy');
      await page.getByRole('button', { name: 'Deploy', exact: true }).click();
      await page.waitForURL(/\/ui\/functions\/shout-copy$/, { timeout: 60000 });
      await page.locator('h1', { hasText: 'shout-copy' }).waitFor();
      await page.locator('h1 .chip', { hasText: '1/1' }).waitFor();
      const spec = await page.locator('dl.spec').innerText();
      assert.match(spec, /GREETING\s+hi/);
      assert.match(spec, /com\.openfaas\.scale\.max\s+2/);
      const status = await (await api('/system/function/shout-copy')).json();
      assert.equal(status.envVars.MODE, 'copy');
      assert.equal(status.labels.team, 'portal');

      // Deploying the same name again offers to replace it.
      await page.goto(`${BASE}/ui/deploy?image=ui-shout:1`);
      await page.getByLabel('Function name').fill('shout-copy');
      await page.getByRole('button', { name: 'Deploy', exact: true }).click();
      await page.locator('#deploy-error', { hasText: 'already exists' }).waitFor();
      await page.goBack();
      await page.locator('h1', { hasText: 'shout-copy' }).waitFor();

      // Scale up with +, then remove: Escape cancels, the danger button removes.
      await page.getByRole('button', { name: 'Add one replica' }).click();
      await page.locator('h1 .chip', { hasText: '2/2' }).waitFor({ timeout: 30000 });
      assert.equal(await page.locator('#instances-table tbody tr').count(), 2);
      await page.getByRole('button', { name: 'Remove', exact: true }).click();
      await page.getByRole('dialog').waitFor();
      await page.keyboard.press('Escape');
      await page.getByRole('dialog').waitFor({ state: 'detached' });
      assert.equal((await api('/system/function/shout-copy')).status, 200);
      await page.getByRole('button', { name: 'Remove', exact: true }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Remove function' }).click();
      await page.waitForURL(/\/ui\/$/);
      await page.locator('#functions-table tbody tr[data-function="hello"]').waitFor();
      assert.equal(await page.locator('#functions-table tbody tr[data-function="shout-copy"]').count(), 0);
      assert.equal((await api('/system/function/shout-copy')).status, 404);
    }));

  it('follows an asynchronous call to its end and replays a dead letter', () =>
    onPage('async', '/ui/functions/hello', async (page) => {
      await page.locator('h1', { hasText: 'hello' }).waitFor();
      await page.getByRole('radio', { name: 'Async' }).check();
      await page.getByLabel('Body', { exact: true }).fill('later');
      await page.getByRole('button', { name: 'Send' }).click();
      const id = (await page.locator('#async-call-id').innerText()).trim();
      assert.match(id, /\S{8,}/);
      await page.locator('#async-state [data-state="succeeded"]').waitFor({ timeout: 30000 });
      assert.match(await page.locator('#async-detail').innerText(), /HTTP 200/);

      const failed = await api('/async-function/hello?fail=1', { method: 'POST', body: 'doomed' });
      assert.equal(failed.status, 202);
      const deadId = failed.headers.get('x-call-id');
      await eventually('the failed call to be dead-lettered', 30000, async () => (await (await api(`/system/async/${deadId}`)).json()).state === 'deadLettered');

      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Async' }).click();
      await page.waitForURL(/\/ui\/async$/);
      await page.locator(`#recent-table tr[data-call="${id}"] [data-state="succeeded"]`).waitFor();
      await page.locator(`#depth-table tr[data-function="hello.${NS}"]`).waitFor();
      const dead = page.locator(`#dead-table tr[data-call="${deadId}"]`);
      await dead.waitFor();
      assert.match(await dead.innerText(), /the function answered 500/);

      await page.getByLabel('Call id', { exact: true }).fill(id);
      await page.getByRole('button', { name: 'Find' }).click();
      await page.locator('#call-details [data-state="succeeded"]').waitFor();
      await shot(page, 'async');

      const before = (await (await api(`/system/async/${deadId}`)).json()).updatedAt;
      await dead.getByRole('button', { name: `Replay call ${deadId}` }).click();
      await page.locator('.toast', { hasText: `Replayed ${deadId}` }).waitFor();
      await eventually('the replayed call to run again', 30000, async () => (await (await api(`/system/async/${deadId}`)).json()).updatedAt > before);

      // Two more dead letters, and the first one dead again: "Replay all" queues all of them.
      const more = [];
      for (const body of ['doomed 2', 'doomed 3']) {
        const r = await api('/async-function/hello?fail=1', { method: 'POST', body });
        assert.equal(r.status, 202);
        more.push(r.headers.get('x-call-id'));
      }
      const all = [deadId, ...more];
      const record = async (callId) => (await api(`/system/async/${callId}`)).json();
      await eventually('three dead letters', 30000, async () => (await Promise.all(all.map(record))).every((r) => r.state === 'deadLettered'));
      const times = new Map(await Promise.all(all.map(async (callId) => [callId, (await record(callId)).updatedAt])));
      await page.locator(`#dead-table tr[data-call="${more[1]}"]`).waitFor();
      await page.getByRole('button', { name: 'Replay all' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Replay all' }).click();
      await page.locator('.toast', { hasText: /Replayed \d+ calls/ }).waitFor();
      await eventually('every dead letter to run again', 30000, async () => (await Promise.all(all.map(record))).every((r) => r.updatedAt > times.get(r.id)));
    }));

  it('shows live figures in the list', () =>
    onPage('list-figures', '/ui/', async (page) => {
      const rate = page.locator('#functions-table tr[data-function="hello"] td[data-label="Req/s"]');
      await rate.waitFor();
      // Calls keep coming while the sampler takes two samples of /metrics.
      const stop = Date.now() + 4000;
      while (Date.now() < stop) {
        await api('/function/hello', { method: 'POST', body: 'list' });
        await new Promise((r) => setTimeout(r, 100));
      }
      await eventually('a request rate in the list', 10000, async () => parseFloat(await rate.innerText()) > 0);
      assert.match(await page.locator('#functions-table tr[data-function="hello"] td[data-label="Last call"]').innerText(), /ago|just now/);
      await shot(page, 'functions');
    }));

  it('fits a phone-sized screen', async () => {
    const phone = { width: 390, height: 844 };
    for (const [name, urlPath, ready] of [
      ['functions-phone', '/ui/', '#functions-table tbody tr[data-function="hello"]'],
      ['function-phone', '/ui/functions/hello', '#instances-table'],
      ['async-phone', '/ui/async', '#depth-table'],
    ]) {
      await onPage(
        name,
        urlPath,
        async (page) => {
          await page.locator(ready).waitFor();
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          assert.ok(overflow <= 0, `${urlPath} is ${overflow} px wider than a phone`);
          await shot(page, name);
        },
        { viewport: phone },
      );
    }
  });

  it('shows empty states and says what to do about errors', () =>
    onPage(
      'states',
      '/ui/',
      async (page) => {
        await page.getByText('No functions yet').waitFor();
        await page.getByRole('link', { name: 'Deploy from the store' }).waitFor();
        await shot(page, 'functions-empty');

        await page.unroute('**/system/functions');
        await page.route('**/system/functions', (r) => r.fulfill({ status: 401, body: 'unauthorized' }));
        await page.reload();
        await page.getByRole('alert').filter({ hasText: 'Not signed in' }).waitFor();
        assert.match(await page.getByRole('alert').innerText(), /USER:PASSWORD@HOST/);

        await page.route('**/system/async', (r) => r.fulfill({ status: 501, body: 'asynchronous calls are not enabled on this gateway\n' }));
        await page.goto(`${BASE}/ui/async`);
        await page.getByText('Asynchronous calls are off').waitFor();
        await page.getByText('asynchronous calls are not enabled on this gateway').waitFor();
      },
      { setup: (page) => page.route('**/system/functions', (r) => r.fulfill({ status: 200, contentType: 'application/json', body: '[]' })) },
    ));

  it('says what is wrong when a page cannot load', () =>
    onPage('errors', '/ui/functions/no-such-function', async (page) => {
      await page.getByText('No function named no-such-function').waitFor();
      await page.goto(`${BASE}/ui/no/such/page`);
      await page.getByText('No such page').waitFor();
    }));
});
