import { defineConfig } from '@playwright/test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// The browser tests run against a real `easel dev` on its own ports, state
// directory and database. The values are chosen once, in the runner, and
// reach the workers through the environment.
const env = process.env
env.EASEL_E2E_PORT_BASE ??= String(Math.floor(Math.random() * 4000))
const port = (n: number) => 61000 + ((Number(env.EASEL_E2E_PORT_BASE) + n) % 4500)
env.EASEL_E2E_STATE ??= mkdtempSync(join(tmpdir(), 'easel-web-'))
env.EASEL_E2E_DATABASE_URL ??= `postgres://postgres:postgres@127.0.0.1:5432/easel_web_${env.EASEL_E2E_PORT_BASE}?sslmode=disable`
const base = `http://127.0.0.1:${port(0)}`
// EASEL_BIN is a built easel binary (the Go test passes one); without it
// the stack runs from source.
const easel = env.EASEL_BIN ?? 'go run ./cmd/easel'

export default defineConfig({
  testDir: 'e2e',
  timeout: 90_000,
  expect: { timeout: 20_000 },
  workers: 1,
  reporter: [['list']],
  outputDir: 'test-results/artifacts',
  use: {
    baseURL: base,
    launchOptions: { executablePath: env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] },
    viewport: { width: 1280, height: 860 },
    trace: 'retain-on-failure',
  },
  webServer: {
    command: `${easel} dev --state-dir ${env.EASEL_E2E_STATE} --http-addr 127.0.0.1:${port(0)} --temporal-port ${port(1)} --ui-port ${port(2)} --s3-addr 127.0.0.1:${port(3)} --step-delay 60ms --token-ttl 90s`,
    cwd: '..',
    url: `${base}/healthz`,
    timeout: 240_000,
    reuseExistingServer: false,
    stdout: 'ignore',
    stderr: 'pipe',
    env: { DATABASE_URL: env.EASEL_E2E_DATABASE_URL, REDIS_URL: env.EASEL_E2E_REDIS_URL ?? 'redis://127.0.0.1:6379/0', LOG_FORMAT: 'text', LOG_LEVEL: 'warn' },
  },
})
