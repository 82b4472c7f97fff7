// Bundles the pages' script: vibe/services/gateway/web/src/main.js and the packages it imports
// (from this folder's node_modules, installed by `npm ci` from package-lock.json) into one file,
// vibe/services/gateway/web/static/app.js, which the gateway serves. No CDN: everything the page
// runs is in that file. Run by `make web` (part of `make setup`), by the package build (setup.py)
// and by the Dockerfile's web stage.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.join(here, "..", "..", "vibe", "services", "gateway", "web");
const out = process.argv[2] || path.join(web, "static", "app.js");

await build({
  entryPoints: [path.join(web, "src", "main.js")],
  outfile: out,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "none",
  nodePaths: [path.join(here, "node_modules")], // the sources live beside the page, the packages here
  logLevel: "warning",
});
