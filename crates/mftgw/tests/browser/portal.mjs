// Drives the Certificate Portal in headless Chromium (Playwright with client certificates).
// Usage: node portal.mjs <scenario> <config.json>; prints one JSON line of results on stdout
// and exits non-zero on the first failed check. Screenshots go to config.screenshots.
// crates/mftgw/tests/portal_browser.rs runs it against a real `mftgw demo`.
import assert from "node:assert/strict";
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [scenario, configPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, "utf8"));
const origin = config.portal.replace(/\/$/, "");
mkdirSync(config.screenshots, { recursive: true });

const browser = await chromium.launch({
  executablePath: config.chromium,
  args: ["--no-sandbox"],
});

/** A browser context presenting the certificate `cert` ({cert_pem, key_pem}). */
async function contextFor(cert, options = {}) {
  const context = await browser.newContext({
    clientCertificates: [{ origin, certPath: cert.cert_pem, keyPath: cert.key_pem }],
    viewport: { width: 1100, height: 900 },
    ...options,
  });
  const page = await context.newPage();
  return { context, page };
}

let shot = 0;
const shotNames = [];
async function screenshot(page, name) {
  shot += 1;
  shotNames.push(name);
  const file = join(config.screenshots, `${scenario}-${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

/** Basic accessibility: a language, a title, one h1, a label for every field and button. */
async function checkAccessible(page) {
  const problems = await page.evaluate(() => {
    const found = [];
    if (!document.documentElement.lang) found.push("html has no lang");
    if (!document.title) found.push("no title");
    if (document.querySelectorAll("h1").length !== 1) found.push("not exactly one h1");
    for (const input of document.querySelectorAll("input:not([type=hidden])")) {
      if (input.labels.length === 0 && !input.getAttribute("aria-label")) {
        found.push(`input ${input.name} has no label`);
      }
    }
    for (const button of document.querySelectorAll("button")) {
      if (!button.textContent.trim()) found.push("button without text");
    }
    return found;
  });
  assert.deepEqual(problems, [], `accessibility problems on ${page.url()}`);
}

async function stateText(page) {
  return (await page.locator("#registration-state").textContent()).trim();
}

/** First login: the username is the password, then a forced change to `newPassword`. */
async function firstLogin(page, username, newPassword) {
  await page.goto(origin + "/");
  await checkAccessible(page);
  assert.equal((await page.locator("#username").textContent()).trim(), username);
  await screenshot(page, "login");
  await page.fill("#password", username);
  await page.click("button[type=submit]:has-text('Log på')");
  await page.waitForURL(origin + "/password");
  await checkAccessible(page);
  assert.match(await page.textContent("main"), /første gang/i);
  await screenshot(page, "forced-password-change");
  await page.fill("#current", username);
  await page.fill("#new", newPassword);
  await page.fill("#confirm", newPassword);
  await page.click("main button[type=submit]");
  await page.waitForURL(origin + "/?done=password");
  assert.match(await page.textContent("main"), /adgangskode er skiftet/);
}

/** Logs on with an already chosen portal password. */
async function login(page, username, password) {
  await page.goto(origin + "/");
  assert.equal((await page.locator("#username").textContent()).trim(), username);
  await page.fill("#password", password);
  await page.click("main button[type=submit]");
  await page.waitForURL(origin + "/");
}

/** Clicks "Registrér certifikat", then "Opdatér" until the registration is done. */
async function registerAndWait(page, name) {
  await page.click("#register");
  await page.waitForURL(origin + "/?done=registration");
  await screenshot(page, `${name}-started`);
  const deadline = Date.now() + 30_000;
  const seen = new Set();
  for (;;) {
    const state = await stateText(page);
    if (/klar til brug/.test(state)) break;
    assert.ok(Date.now() < deadline, `registration never finished; state: ${state}`);
    assert.match(state, /i gang|FTPS-login virker fra/);
    if (/FTPS-login virker fra/.test(state) && !seen.has("pending")) {
      seen.add("pending");
      assert.equal((await page.locator("#registration").textContent()).trim(), "Registreret, afventer aktivering");
      await screenshot(page, `${name}-activation-pending`);
    }
    await page.waitForTimeout(300);
    await page.click("#refresh");
    await page.waitForLoadState();
  }
  assert.equal((await page.locator("#registration").textContent()).trim(), "Registreret og aktiv");
  await page.click("#gateway-password summary");
  const password = (await page.locator("#gateway-password-value").textContent()).trim();
  assert.match(password, /^[2-9A-HJ-NP-Za-km-z]{24}$/);
  await screenshot(page, `${name}-done-password-shown`);
  return password;
}

const scenarios = {
  /** First login, forced change, registration, profile, language and a phone-sized view. */
  async register() {
    const { page } = await contextFor(config.certificate);
    const username = config.username;
    await firstLogin(page, username, config.portal_password);
    await checkAccessible(page);
    assert.match(await stateText(page), /ikke registreret/);
    assert.equal((await page.locator("#legal-identifier").textContent()).trim(), username.split("_").slice(0, 2).join("_"));
    await screenshot(page, "overview-unregistered");
    const gatewayPassword = await registerAndWait(page, "registration");
    assert.ok(!config.activation_delay || shotNames.some((n) => n.includes("activation-pending")), "the activation delay was visible");
    assert.equal((await page.locator("#gateway-user").textContent()).trim(), username);

    // Profile: SE-number, e-mail, interfaces.
    await page.fill("#se_number", "12345678");
    await page.fill("#email", "it@portal-test.example");
    await page.check("input[name=as4]");
    await page.click("#save");
    await page.waitForURL(origin + "/?done=saved");
    assert.match(await page.textContent("main"), /ændringer er gemt/);
    assert.equal(await page.inputValue("#se_number"), "12345678");
    assert.equal(await page.inputValue("#email"), "it@portal-test.example");
    assert.ok(await page.isChecked("input[name=as4]"));
    assert.ok(await page.isChecked("input[name=ftps]"));
    await screenshot(page, "profile-saved");

    await page.click("a[lang=en]");
    await page.waitForURL(origin + "/");
    assert.equal(await page.textContent("h1"), "Certificate and user overview");
    assert.equal(await page.getAttribute("html", "lang"), "en");
    await screenshot(page, "overview-english");
    await page.click("a[lang=da]");
    await page.waitForURL(origin + "/");

    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the overview is ${overflow}px wider than a phone`);
    await screenshot(page, "overview-phone");
    return { gateway_password: gatewayPassword };
  },

  /** After an FTPS heartbeat: transactions with their history, /out, log out. */
  async activity() {
    const { page } = await contextFor(config.certificate);
    await login(page, config.username, config.portal_password);
    await page.click("nav.main-nav a[href='/transactions']");
    await page.waitForURL(origin + "/transactions");
    await checkAccessible(page);
    const row = page.locator("#transactions tbody tr", { hasText: config.upload_name });
    assert.equal(await row.count(), 1, "the heartbeat upload is listed once");
    const history = await row.locator("ol.history li").allTextContents();
    assert.deepEqual(history.map((step) => step.split(" · ")[0]), ["1 leveret", "2 accepteret", "3 svar lagt i /out"]);
    assert.match(await row.textContent(), /Besvaret/);
    await screenshot(page, "transactions");

    await page.click("nav.main-nav a[href='/out']");
    await page.waitForURL(origin + "/out");
    await checkAccessible(page);
    const names = await page.locator("#out-files td.name").allTextContents();
    for (const expected of config.out_names) {
      assert.ok(names.includes(expected), `/out lists ${expected}; it lists ${names}`);
    }
    await screenshot(page, "out");

    await page.click("form.logout button");
    await page.waitForLoadState();
    assert.match(await page.textContent("main"), /logget af/);
    await screenshot(page, "logged-out");
    await page.goto(origin + "/transactions");
    assert.equal(await page.locator("#password").count(), 1, "after logging out, pages ask for the password");
    return {};
  },

  /** A renewed certificate with the same account registers over the old one. */
  async renew() {
    const { page } = await contextFor(config.certificate);
    await login(page, config.username, config.portal_password);
    assert.match(await stateText(page), /registreret med et andet certifikat/);
    await screenshot(page, "renewal-offered");
    const password = await registerAndWait(page, "renewal");

    // The replaced certificate still opens the portal, which says it is replaced.
    const old = await contextFor(config.old_certificate);
    await login(old.page, config.username, config.portal_password);
    assert.match(await stateText(old.page), /erstattet af et nyere/);
    assert.equal(await old.page.locator("#register").count(), 0, "a replaced certificate cannot register");
    assert.equal(await old.page.locator("#gateway-password").count(), 0, "nor see the password");
    await screenshot(old.page, "replaced-certificate");
    return { gateway_password: password };
  },

  /** FOCES and personal certificates get a refusal page. */
  async refused() {
    const results = {};
    for (const [name, cert] of Object.entries(config.certificates)) {
      const { page, context } = await contextFor(cert);
      const response = await page.goto(origin + "/");
      assert.equal(response.status(), 403, `${name}: status`);
      assert.equal(await page.textContent("h1"), "Certifikatet kan ikke bruges");
      assert.equal(await page.locator("#password").count(), 0, `${name}: no login form`);
      await checkAccessible(page);
      await screenshot(page, name);
      results[name] = (await page.textContent("p.error")).trim();
      await context.close();
    }
    return results;
  },

  /** An expired certificate does not get through the TLS handshake. */
  async expired() {
    const { page } = await contextFor(config.certificate);
    let outcome;
    try {
      const response = await page.goto(origin + "/");
      outcome = { status: response.status(), body: await page.textContent("body") };
    } catch (error) {
      outcome = { error: String(error.message).split("\n")[0] };
    }
    await screenshot(page, "expired");
    const body = outcome.body ?? outcome.error ?? "";
    assert.ok(!/Log på|Log on/.test(body), `an expired certificate reached the login page: ${JSON.stringify(outcome)}`);
    assert.match(body, /certificate expired/, "the TLS handshake refused it as expired");
    return outcome;
  },

  /** A form without its CSRF token is refused, and nothing changes. */
  async csrf() {
    const { page } = await contextFor(config.certificate);
    await firstLogin(page, config.username, config.portal_password);
    await page.waitForURL(origin + "/?done=password");
    await page.evaluate(() => document.querySelector("#profile input[name=csrf]").remove());
    await page.fill("#se_number", "87654321");
    const [response] = await Promise.all([page.waitForResponse(origin + "/profile"), page.click("#save")]);
    assert.equal(response.status(), 403);
    assert.match(await page.textContent("main"), /kom ikke fra portalen/);
    await screenshot(page, "refused");
    await page.goto(origin + "/");
    assert.equal(await page.inputValue("#se_number"), "", "the SE-number was not saved");
    return {};
  },

  /** A revoked certificate gets the registration flow and a page saying it is revoked. */
  async revoked() {
    const { page } = await contextFor(config.certificate);
    await page.goto(origin + "/");
    await page.fill("#password", config.username);
    await page.click("button[type=submit]:has-text('Log på')");
    await page.waitForURL(origin + "/");
    await checkAccessible(page);
    assert.match(await stateText(page), /spærret \(tilbagekaldt\)/);
    assert.equal(await page.locator("#gateway-password").count(), 0, "no gateway password");
    assert.equal(await page.locator("#gateway-user").count(), 0, "no gateway username");
    assert.equal(await page.locator("#save").count(), 0, "no profile change");
    assert.ok(await page.isDisabled("#se_number"), "the profile is read-only");
    await screenshot(page, "revoked-overview");
    const response = await page.goto(origin + "/password");
    assert.equal(response.status(), 403, "no password change");
    assert.match(await page.textContent("main"), /kun registrere certifikatet/);
    await screenshot(page, "revoked-password-refused");
    return {};
  },

  /** A session cookie presented with another certificate is refused and ended. */
  async replay() {
    const owner = await contextFor(config.certificate);
    await firstLogin(owner.page, config.username, config.portal_password);
    const cookies = await owner.context.cookies(origin);
    const session = cookies.find((cookie) => cookie.name === "__Host-mftgw_session");
    assert.ok(session, "the portal set a session cookie");
    assert.ok(session.secure && session.httpOnly && session.sameSite === "Strict", JSON.stringify(session));

    const thief = await contextFor(config.other_certificate);
    await thief.context.addCookies([session]);
    const response = await thief.page.goto(origin + "/");
    assert.equal(response.status(), 403);
    assert.equal((await thief.page.locator("#username").textContent()).trim(), config.other_username);
    assert.equal(await thief.page.locator("#registration-state").count(), 0, "no overview for the replayed cookie");
    assert.match(await thief.page.textContent("p.error"), /andet certifikat/);
    await screenshot(thief.page, "replayed-cookie-refused");

    await owner.page.goto(origin + "/");
    assert.equal(await owner.page.locator("#password").count(), 1, "the leaked session has ended");
    return {};
  },
};

try {
  const result = await scenarios[scenario]();
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
