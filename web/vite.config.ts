/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

// The API (easel dev) that `npm run dev` proxies to, for hot reload.
const api = process.env.EASEL_API ?? 'http://127.0.0.1:8080'

export default defineConfig({
  plugins: [react()],
  // dist/ holds a committed note so a clean clone's go:embed compiles; the
  // build goes under it. Hashed files go under static/, the prefix that both
  // the API and CloudFront's /static/* behaviour cache for a year.
  // auth/silent.html is the page a silent sign-in comes back to, in a
  // hidden frame; its one inline script hands the answer to the app.
  build: {
    outDir: 'dist/app',
    emptyOutDir: true,
    assetsDir: 'static',
    rollupOptions: { input: { app: 'index.html', silent: 'auth/silent.html' } },
  },
  server: {
    proxy: { '/v1': api, '/dev': api, '/config.json': api },
  },
  // Unit tests (npm test): the app's logic, in Node; the browser tests are
  // Playwright's (e2e/).
  test: { include: ['src/**/*.test.ts'], environment: 'node' },
})
