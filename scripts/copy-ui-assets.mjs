// Part of `npm run build`: copies the dashboard's static assets (src/ui/assets) next to the built
// server (dist/ui/assets), so `npx fanfold ui` works from a clone and from the package.
import { cpSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const from = fileURLToPath(new URL('../src/ui/assets/', import.meta.url));
const to = fileURLToPath(new URL('../dist/ui/assets/', import.meta.url));
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
