// Debian's chromium, headless, driven by playwright-core for crates/ferry/tests/dashboard.rs.
// One command per line on stdin (JSON), one answer per line on stdout:
//   {"op": "open", "page": "alice"}                  a page in a browser context of its own
//   {"op": "goto", "page": "alice", "url": "…"}       load, wait for the app to render; → the
//                                                     ms from navigation to that first render
//   {"op": "fill" | "click", "page", "selector", "text"?}
//   {"op": "wait_text", "page", "selector", "text"}   until the element holds the text
//   {"op": "count", "page", "selector"}               → how many elements match
//   {"op": "eval", "page", "script"}                  → the value of an async function body
//   {"op": "screenshot", "page", "path"}
//   {"op": "weight", "page"}                          → bytes the page and its requests took
// Answers: {"ok": true, "value": …} or {"ok": false, "error": "…"}. The machine has no
// internet: chromium's background networking is off, and playwright starts it on a new,
// empty profile (a --user-data-dir of its own) every run.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { join } from "node:path";

// playwright-core is installed outside the source tree (scripts/lib.sh, ferry_ensure_browser).
const tools = process.env.FERRY_BROWSER_TOOLS || join(import.meta.dirname, "../../../../.tools/browser");
const { chromium } = createRequire(join(tools, "package.json"))("playwright-core");

const TIMEOUT = 90_000;
const browser = await chromium.launch({
  executablePath: process.env.FERRY_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const pages = new Map();

async function run(cmd) {
  const page = pages.get(cmd.page);
  if (cmd.op === "open") {
    const context = await browser.newContext({ viewport: { width: cmd.width || 1280, height: cmd.height || 800 } });
    const p = await context.newPage();
    p.setDefaultTimeout(TIMEOUT);
    p.on("dialog", (d) => d.accept());
    pages.set(cmd.page, p);
    return null;
  }
  if (!page) throw new Error(`no page ${cmd.page}: open it first`);
  switch (cmd.op) {
    case "goto": {
      const started = Date.now();
      await page.goto(cmd.url);
      if (cmd.ready === false) return Date.now() - started;
      await page.waitForSelector("body[data-ready=true]", { state: "attached" });
      // When the page first showed what it is for, in ms since navigation (the page's clock).
      return Number(await page.evaluate(() => document.body.dataset.renderedMs));
    }
    case "fill": await page.fill(cmd.selector, cmd.text); return null;
    case "click": await page.click(cmd.selector); return null;
    case "wait_text":
      await page.locator(cmd.selector, { hasText: cmd.text }).first().waitFor({ timeout: cmd.timeout || TIMEOUT });
      return null;
    case "count": return await page.locator(cmd.selector).count();
    case "eval": return await page.evaluate(`(async () => { ${cmd.script} })()`);
    case "screenshot": await page.screenshot({ path: cmd.path, fullPage: true }); return null;
    case "url": return page.url();
    case "weight":
      return await page.evaluate(() => {
        const nav = performance.getEntriesByType("navigation")[0];
        const all = [nav, ...performance.getEntriesByType("resource")];
        return all.reduce((n, e) => n + (e.transferSize || e.encodedBodySize || 0), 0);
      });
    default: throw new Error(`unknown op ${cmd.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = { ok: true, value: await run(JSON.parse(line)) };
  } catch (e) {
    // What the page showed, to say why a wait failed.
    let shown = "";
    try {
      const page = pages.get(JSON.parse(line).page);
      if (page) shown = "\nthe page showed:\n" + (await page.locator("body").innerText({ timeout: 2000 })).slice(0, 3000);
    } catch (_) { /* the page is gone */ }
    answer = { ok: false, error: String(e && e.message ? e.message : e) + shown };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser.close();
