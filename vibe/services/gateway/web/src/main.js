// One bundle for both pages (static/app.js, built by esbuild: tools/web/package.json); the
// page says which it is with <body data-page>.
import { main as candidate } from "./candidate.js";
import { main as reviewer } from "./reviewer.js";

const pages = { candidate, reviewer };
const page = pages[document.body.dataset.page];
if (page) page().catch((e) => console.error(e));
