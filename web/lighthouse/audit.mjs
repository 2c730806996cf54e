// Lighthouse audits of the web app against a real `easel dev` (make lighthouse).
//
// The app keeps its tokens in memory; a page load gets new ones from the
// issuer's own session (a silent sign-in in a hidden frame), as a reload
// does for a person. One Lighthouse user flow drives one browser in
// Debian's chromium:
//
//   1. navigation: "/" signed out, the sign-in page;
//   2. sign in through the development issuer's form, as a person would
//      (this starts the issuer's session);
//   3. navigation: /gallery, signed in (restored from the issuer's
//      session), a gallery with pictures in it;
//   4. navigation: / signed in, the Generate page.
//
// Every step is a cold navigation with every category scored. As a
// navigation's performance score moves with the machine's load (total
// blocking time is the CPU time observed, times four, on a 2-core machine
// shared with others), each page is also loaded LIGHTHOUSE_RUNS more times
// on fresh pages, as Lighthouse's documentation advises (the sign-in page
// in a browser context of its own, signed out), and the performance target
// applies to the median.
//
// It writes the flow's JSON and HTML report and one JSON per step under
// web/test-results/lighthouse/, prints a table of scores, and exits 1 when
// a score is under its target.
//
// Environment: EASEL_BIN (a built easel, default bin/easel), CHROME_PATH
// (default /usr/bin/chromium), DATABASE_URL (default the easel_lighthouse
// database on the local Postgres), REDIS_URL, LIGHTHOUSE_OUT, and
// LIGHTHOUSE_FORM_FACTOR (mobile, the default, or desktop), LIGHTHOUSE_RUNS
// (cold navigations of each page for the median, default 5), and
// LIGHTHOUSE_LANTERN=1 to print, after each page's last run, the timings
// Lighthouse simulated for its largest paint (each request and main-thread
// task, in the optimistic graph): what is on the path, and how long.

import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import lighthouse, { desktopConfig, startFlow } from 'lighthouse'
import puppeteer from 'puppeteer-core'
import * as Lantern from 'lighthouse/core/lib/lantern/lantern.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, '..', '..')
const env = process.env
const easelBin = resolve(root, env.EASEL_BIN ?? 'bin/easel')
const chrome = env.CHROME_PATH ?? '/usr/bin/chromium'
const out = resolve(root, env.LIGHTHOUSE_OUT ?? 'web/test-results/lighthouse')
const formFactor = env.LIGHTHOUSE_FORM_FACTOR ?? 'mobile'
const runs = Number(env.LIGHTHOUSE_RUNS ?? 5)

// Targets, for every page.
const targets = { performance: 0.9, accessibility: 0.95, 'best-practices': 0.95 }

// freePort asks the kernel for a port nobody listens on.
function freePort() {
  return new Promise((done, fail) => {
    const s = createServer()
    s.once('error', fail)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => done(port))
    })
  })
}

// startStack runs `easel dev` on free ports with its own state directory;
// its log goes to easel.log beside the reports.
async function startStack() {
  const [http, temporal, ui, s3] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const state = mkdtempSync(join(tmpdir(), 'easel-lighthouse-'))
  const log = openSync(join(out, 'easel.log'), 'w')
  const child = spawn(easelBin, ['dev', '--state-dir', state, '--http-addr', `127.0.0.1:${http}`,
    '--temporal-port', String(temporal), '--ui-port', String(ui), '--s3-addr', `127.0.0.1:${s3}`, '--step-delay', '20ms'], {
    cwd: root,
    stdio: ['ignore', log, log],
    env: {
      ...env,
      DATABASE_URL: env.DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/easel_lighthouse?sslmode=disable',
      REDIS_URL: env.REDIS_URL ?? 'redis://127.0.0.1:6379/0',
      LOG_FORMAT: 'text',
      LOG_LEVEL: 'warn',
    },
  })
  const base = `http://127.0.0.1:${http}`
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((done) => child.once('exit', done))
      child.kill('SIGTERM')
      await Promise.race([exited, sleep(15_000).then(() => child.kill('SIGKILL'))])
    }
    rmSync(state, { recursive: true, force: true })
  }
  const deadline = Date.now() + 240_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`easel dev exited with ${child.exitCode}: see ${join(out, 'easel.log')}`)
    try {
      if ((await fetch(`${base}/healthz`)).ok) return { base, stop }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`easel dev did not answer ${base}/healthz within 240 s`)
    }
    await sleep(500)
  }
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms))

// api calls the API as email (an ID token from the development issuer).
async function apiAs(base, email) {
  const login = await fetch(`${base}/dev/oidc/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email }) })
  if (!login.ok) throw new Error(`dev sign-in: ${login.status} ${await login.text()}`)
  const token = (await login.json()).id_token
  return async (method, path, body, headers = {}) => {
    const r = await fetch(base + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`)
    return r.status === 204 ? undefined : r.json()
  }
}

// until polls check every half second until it answers true.
async function until(what, check, ms = 60_000) {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(500)
  }
}

// seedGallery gives the person a Pro plan and three finished jobs of four
// images, so the gallery audited is a gallery with pictures in it.
async function seedGallery(base, email) {
  const call = await apiAs(base, email)
  await call('POST', '/v1/subscriptions', { plan: 'pro', payment_method: 'pm_card_visa' })
  await until('the Pro plan', async () => (await call('GET', '/v1/me')).plan.slug === 'pro')
  for (let i = 0; i < 3; i++) {
    const g = await call('POST', '/v1/generations', { prompt: `lighthouse picture ${i}`, steps: 1, batch_size: 4, seed: 7 + i },
      { 'Idempotency-Key': `lighthouse-${Date.now()}-${i}` })
    await until(`job ${g.id}`, async () => (await call('GET', `/v1/generations/${g.id}`)).status === 'completed')
  }
}

// clickByText clicks the first element matching selector whose text is text.
async function clickByText(page, selector, text) {
  const handle = await page.waitForSelector(`::-p-xpath(//${selector}[normalize-space(.)='${text}'])`, { visible: true })
  await handle.click()
}

// signIn goes through the development issuer's form from the sign-in page
// and waits for the signed-in app (its Sign out button).
async function signIn(page, email) {
  await Promise.all([page.waitForNavigation(), clickByText(page, 'button', 'Sign in')])
  await page.waitForSelector('input#email', { visible: true })
  await page.type('input#email', email)
  await clickByText(page, 'button', 'Sign in')
  await page.waitForSelector(`::-p-xpath(//button[normalize-space(.)='Sign out'])`, { visible: true, timeout: 30_000 })
}

// score is a category's score where the mode measures it as one: every
// category of a navigation, and all but performance in the other modes.
// A timespan's or snapshot's performance is a list of audits with no
// weighted metrics (a snapshot's "score" is a meaningless 0); Lighthouse's
// flow report shows it as audits passed out of those that apply, and so
// does fraction.
function score(lhr, id) {
  const c = lhr.categories[id]
  if (!c || c.score === null || (id === 'performance' && lhr.gatherMode !== 'navigation')) return undefined
  return c.score
}

function fraction(lhr, id) {
  const c = lhr.categories[id]
  if (!c) return undefined
  const counted = c.auditRefs.map((r) => lhr.audits[r.id])
    .filter((a) => a.score !== null && !['notApplicable', 'manual', 'informative', 'error'].includes(a.scoreDisplayMode))
  return `${counted.filter((a) => a.score >= 0.9).length}/${counted.length}`
}

// report writes the flow's reports and prints, for each step, its mode
// and its category scores; it answers the scores under their targets.
async function report(flow) {
  const result = await flow.createFlowResult()
  writeFileSync(join(out, 'flow.json'), JSON.stringify(result, null, 2))
  writeFileSync(join(out, 'flow.html'), await flow.generateReport())
  const cats = ['performance', 'accessibility', 'best-practices', 'seo']
  const rows = [['step', 'mode', ...cats]]
  const misses = []
  result.steps.forEach((step, i) => {
    const lhr = step.lhr
    writeFileSync(join(out, `step-${i + 1}-${lhr.gatherMode}.json`), JSON.stringify(lhr, null, 2))
    rows.push([step.name, lhr.gatherMode, ...cats.map((c) => {
      const s = score(lhr, c)
      return s === undefined ? (fraction(lhr, c) ?? '-') : Math.round(s * 100).toString()
    })])
    // Targets apply to the scores (numbers out of 100), not to fractions.
    for (const [c, min] of Object.entries(targets)) {
      const s = score(lhr, c)
      if (s !== undefined && s < min) misses.push(`${step.name}: ${c} ${Math.round(s * 100)} < ${min * 100}`)
    }
  })
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
  for (const r of rows) console.log(r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  '))
  console.log('(n/m: audits passed out of those that apply; the mode gives no score)')
  console.log(`form factor: ${formFactor}; reports: ${out}/flow.html (and flow.json, step-*.json)`)
  return misses
}

// pages are those audited: the sign-in page signed out, the others signed
// in (their navigation restores the session).
const pages = [
  { name: 'Sign-in page', path: '/', signedIn: false },
  { name: 'Gallery', path: '/gallery', signedIn: true },
  { name: 'Generate', path: '/', signedIn: true },
]

// medianRuns loads a page runs times, each on a new page of context, and
// prints each run's performance score and metrics; it answers the median
// score.
async function medianRuns(context, page, url, config) {
  const scores = []
  for (let i = 0; i < runs; i++) {
    const tab = await context.newPage()
    const { lhr } = await lighthouse(url, { onlyCategories: ['performance'] }, config, tab)
    await tab.close()
    const slug = page.name.toLowerCase().replace(/[^a-z]+/g, '-')
    writeFileSync(join(out, `${slug}-run-${i + 1}.json`), JSON.stringify(lhr, null, 2))
    const m = (id) => lhr.audits[id].displayValue.replace(/\s/g, ' ')
    console.log(`${page.name}, run ${i + 1}: performance ${Math.round(lhr.categories.performance.score * 100)}` +
      ` (FCP ${m('first-contentful-paint')}, LCP ${m('largest-contentful-paint')}, TBT ${m('total-blocking-time')}, CLS ${m('cumulative-layout-shift')})`)
    scores.push(lhr.categories.performance.score)
  }
  if (env.LIGHTHOUSE_LANTERN) printLantern()
  scores.sort((a, b) => a - b)
  return scores[Math.floor(scores.length / 2)]
}

// printLantern prints the simulated timings of the last run's largest
// paint, in start order, and forgets every simulation so far.
function printLantern() {
  const all = Lantern.Simulation.Simulator.allNodeTimings
  for (const [label, timings] of all) {
    if (label !== 'optimisticLargestContentfulPaint') continue
    console.log(`  simulated (${label}), ms:`)
    for (const [node, t] of [...timings.entries()].sort((a, b) => a[1].startTime - b[1].startTime)) {
      const what = node.type === 'network' ? node.request.url.slice(0, 100) : 'main thread task'
      console.log(`  ${t.startTime.toFixed(0).padStart(6)} ${t.endTime.toFixed(0).padStart(6)}  ${what}`)
    }
  }
  all.clear()
}

async function main() {
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })
  const stack = await startStack()
  let browser
  try {
    const email = `lighthouse-${Date.now()}@example.com`
    await seedGallery(stack.base, email)
    browser = await puppeteer.launch({ executablePath: chrome, headless: true, args: ['--no-sandbox'] })
    const page = await browser.newPage()
    const config = formFactor === 'desktop' ? desktopConfig : undefined
    const flow = await startFlow(page, { name: `Easel web app (${formFactor})`, config })
    await flow.navigate(`${stack.base}/`, { name: 'Sign-in page (navigation, signed out)' })
    await signIn(page, email)
    await flow.navigate(`${stack.base}/gallery`, { name: 'Gallery (navigation, signed in)' })
    await flow.navigate(`${stack.base}/`, { name: 'Generate (navigation, signed in)' })
    const misses = await report(flow)
    if (runs > 0) {
      // A context of its own has no issuer session: the sign-in page.
      const signedOut = await browser.createBrowserContext()
      for (const p of pages) {
        console.log()
        const median = await medianRuns(p.signedIn ? browser.defaultBrowserContext() : signedOut, p, stack.base + p.path, config)
        console.log(`${p.name} performance, median of ${runs}: ${Math.round(median * 100)}` +
          ` (load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} CPUs)`)
        // The target applies to the median; the flow's single load is
        // shown above but judged here.
        const i = misses.findIndex((m) => m.startsWith(p.name) && m.includes('performance'))
        if (i >= 0) misses.splice(i, 1)
        if (median < targets.performance) misses.push(`${p.name}: performance median ${Math.round(median * 100)} < ${targets.performance * 100}`)
      }
      await signedOut.close()
    }
    if (misses.length) {
      console.error(`\nunder target:\n  ${misses.join('\n  ')}`)
      process.exitCode = 1
    }
  } finally {
    await browser?.close()
    await stack.stop()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
