// tests/browser/pages.test.js - tapegrad's HTML pages in the system Chromium.
//
// For `tapegrad explain --html`, examples/layer_trace --html and
// `tapegrad train --report`: writes the page into BUILD/browser/, opens it from
// a file:// URL, and checks what a reader sees:
//   - the graph has one SVG node per tensor of the graph (the DOT that
//     `explain --dot` writes lists them) and the expected leaves;
//   - pressing the right-arrow key walks the whole forward pass and sweep, and
//     the leaves' gradients shown at the end equal those of `explain --json`;
//   - the report's curves have one point per epoch;
// and saves a screenshot of each page (desktop and phone size) beside it.
// Run by run.sh: node pages.test.js --chromium PATH --build DIR --source DIR
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const puppeteer = require('puppeteer-core');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const build = path.resolve(args.build), source = path.resolve(args.source);
const out = path.join(build, 'browser');
fs.mkdirSync(out, { recursive: true });
const tapegrad = path.join(build, 'cli', 'tapegrad');

let failures = 0;
function check(ok, what) {
  console.log((ok ? 'ok     ' : 'FAILED ') + what);
  if (!ok) failures++;
}
function run(file, argv) {
  return execFileSync(file, argv, { cwd: out, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function close(a, b) { return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)); }

// The tensors of the DOT graph: "  t3 [shape=..., label="name = op\n..."]".
function dotNodes(file) {
  const names = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*t(\d+) \[.*label="([^"\\]*)/.exec(line);
    if (m) names[Number(m[1])] = m[2].split(' = ')[0];
  }
  return names;
}

async function stepToEnd(page) {
  const last = Number(await page.$eval('body', (b) => b.getAttribute('data-last')));
  for (let i = 0; i < last; i++) await page.keyboard.press('ArrowRight');
  const at = Number(await page.$eval('body', (b) => b.getAttribute('data-step')));
  return { last, at };
}

async function explainCase(browser, name, expr, vars, leaves) {
  const html = path.join(out, name + '.html'), dot = path.join(out, name + '.dot');
  run(tapegrad, ['explain', expr, ...vars, '--html', html, '--dot', dot]);
  const json = JSON.parse(run(tapegrad, ['explain', expr, ...vars, '--json']));
  const expected = dotNodes(dot);
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('file://' + html);
  const labels = await page.$$eval('#graph svg g.node', (gs) => gs.map((g) => g.getAttribute('data-label')));
  check(labels.length === expected.length && expected.every((n) => labels.includes(n)),
    `${name}: the graph shows the ${expected.length} tensors of the DOT (${labels.join(', ')})`);
  check(leaves.every((v) => labels.includes(v)), `${name}: the leaves ${leaves.join(', ')} are nodes`);
  check(await page.$eval('#final', (f) => f.getAttribute('data-ready') === 'no'),
    `${name}: the gradients table is not shown before the sweep ends`);
  const { last, at } = await stepToEnd(page);
  check(last > 0 && at === last, `${name}: the right-arrow key walks all ${last} steps`);
  const shown = await page.$$eval('#final-table tbody tr', (rs) => rs.map((r) => ({
    leaf: r.getAttribute('data-leaf'),
    grad: r.querySelector('td.grad').textContent,
    numeric: r.querySelector('td.numeric').textContent,
    verdict: r.querySelector('td.verdict').textContent,
  })));
  check(await page.$eval('#final', (f) => f.getAttribute('data-ready') === 'yes'),
    `${name}: the gradients table is shown at the end`);
  check(shown.length === Object.keys(json.grad).length,
    `${name}: one row per variable (${shown.length})`);
  for (const [v, g] of Object.entries(json.grad)) {
    const row = shown.find((r) => r.leaf === v);
    check(row && close(Number(row.grad), g),
      `${name}: d/d${v} shown ${row && row.grad} = --json ${g}`);
    check(row && close(Number(row.numeric), json.numeric[v]) ,
      `${name}: numeric d/d${v} shown ${row && row.numeric} = --json ${json.numeric[v]}`);
    check(row && /agree|kink/.test(row.verdict), `${name}: verdict for ${v}: ${row && row.verdict}`);
  }
  check(errors.length === 0, `${name}: no script errors ${errors.join('; ')}`);
  await page.screenshot({ path: path.join(out, name + '-end.png'), fullPage: true });
  // back to the first backward step: the seed, one per arrow key
  await page.keyboard.press('Home');
  const F = await page.$$eval('#steps li', (ls) => ls.filter((l) => /forward/.test(l.textContent)).length);
  for (let i = 0; i < F + 1; i++) await page.keyboard.press('ArrowRight');
  const up = await page.$eval('#upstream', (e) => e.textContent);
  check(Number(up) === 1, `${name}: the first backward step shows the seed upstream gradient 1 (${up})`);
  await page.keyboard.press('ArrowRight');
  await page.screenshot({ path: path.join(out, name + '-sweep.png'), fullPage: true });
  // the picture in docs/backprop.md: one window, in the middle of the sweep
  await page.setViewport({ width: 1100, height: 860 });
  await page.screenshot({ path: path.join(out, name + '-docs.png'), fullPage: false });
  // a phone (the page reloads for the mobile viewport): the same step
  await page.setViewport({ width: 390, height: 844, isMobile: true, deviceScaleFactor: 1 });
  for (let i = 0; i < F + 2; i++) await page.keyboard.press('ArrowRight');
  await page.screenshot({ path: path.join(out, name + '-phone.png'), fullPage: true });
  await page.pdf({ path: path.join(out, name + '.pdf'), format: 'A4' });
  await page.close();
}

async function tensorCase(browser) {
  const html = path.join(out, 'layer_trace.html');
  run(path.join(build, 'examples', 'layer_trace'), ['--html', html]);
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('file://' + html);
  const n = await page.$$eval('#graph svg g.node', (gs) => gs.length);
  const data = await page.$eval('#tg-data', (s) => JSON.parse(s.textContent));
  check(n === data.nodes.length && n >= 5, `layer_trace: ${n} graph nodes for ${data.nodes.length} tensors`);
  const { last, at } = await stepToEnd(page);
  check(at === last, `layer_trace: walked ${last} steps`);
  await page.keyboard.press('End');
  // a tensor step names its Jacobian's structure
  const F = data.nodes.filter((x) => x.kind === 'op').length;
  await page.keyboard.press('Home');
  for (let i = 0; i < F + 2; i++) await page.keyboard.press('ArrowRight');
  const table = await page.$eval('#step-table', (t) => t.textContent);
  check(/Jacobian/.test(table), `layer_trace: a tensor step shows the Jacobian structure (${table.slice(0, 80)}...)`);
  await page.click('#graph svg g.node');
  const details = await page.$eval('#details', (d) => d.textContent);
  check(/value/.test(details), 'layer_trace: clicking a node shows its values');
  check(errors.length === 0, `layer_trace: no script errors ${errors.join('; ')}`);
  await page.screenshot({ path: path.join(out, 'layer_trace-sweep.png'), fullPage: true });
  await page.close();
}

// An MNIST-style folder (train-* and t10k-* IDX files) of 6x6 images of three
// classes: a bright row, column or diagonal, with seeded noise; so the report
// has test curves and a confusion matrix on the test set.
function writeIdxFolder(dir) {
  fs.mkdirSync(dir, { recursive: true });
  let state = 12345;
  const rand = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (const [prefix, n] of [['train', 240], ['t10k', 90]]) {
    const img = Buffer.alloc(16 + n * 36), lab = Buffer.alloc(8 + n);
    img.writeUInt32BE(0x803, 0); img.writeUInt32BE(n, 4); img.writeUInt32BE(6, 8); img.writeUInt32BE(6, 12);
    lab.writeUInt32BE(0x801, 0); lab.writeUInt32BE(n, 4);
    for (let i = 0; i < n; i++) {
      const c = i % 3, k = Math.floor(rand() * 6);
      lab[8 + i] = c;
      for (let p = 0; p < 36; p++) {
        const r = Math.floor(p / 6), col = p % 6;
        const on = c === 0 ? r === k : c === 1 ? col === k : r === col;
        img[16 + i * 36 + p] = Math.min(255, Math.floor((on ? 150 : 0) + rand() * 100));
      }
    }
    fs.writeFileSync(path.join(dir, prefix + '-images-idx3-ubyte'), img);
    fs.writeFileSync(path.join(dir, prefix + '-labels-idx1-ubyte'), lab);
  }
}

async function reportCase(browser) {
  const html = path.join(out, 'report.html'), epochs = 8, data = path.join(out, 'idx');
  writeIdxFolder(data);
  const log = run(tapegrad, ['train', data, '--epochs', String(epochs), '--hidden', '16,8', '--seed', '1',
    '--batch', '16', '--lr', '0.01', '--report', html]);
  const logged = (log.match(/^epoch \d+\//gm) || []).length;
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('file://' + html);
  const curves = await page.$$eval('svg[data-chart] g[data-series]', (gs) => gs.map((g) => ({
    chart: g.closest('svg').getAttribute('data-chart'),
    series: g.getAttribute('data-series'),
    points: g.querySelectorAll('circle').length,
  })));
  const perEpoch = curves.filter((c) => /loss|accuracy|grad|ratio|dead/.test(c.chart));
  check(perEpoch.length >= 5, `report: ${perEpoch.length} per-epoch curves`);
  for (const c of perEpoch)
    check(c.points === epochs && logged === epochs, `report: ${c.chart}/${c.series} has ${c.points} points for ${epochs} epochs`);
  const series = curves.filter((c) => c.chart === 'loss').map((c) => c.series).join(' | ');
  check(/train/.test(series) && /test/.test(series), `report: the loss chart has train and test curves (${series})`);
  for (const want of ['loss', 'accuracy', 'grad-norm', 'update-ratio', 'dead-relu', 'hist-first', 'hist-last', 'confusion'])
    check(await page.$(`svg[data-chart="${want}"]`) !== null, `report: has the ${want} chart`);
  const cells = await page.$$eval('svg[data-chart="confusion"] rect.cell', (rs) => rs.length);
  check(cells === 9, `report: a 3x3 confusion matrix (${cells} cells)`);
  const axes = await page.$$eval('svg[data-chart]', (ss) => ss.every((s) => s.querySelectorAll('text.axis-label').length >= 1));
  check(axes, 'report: every chart has axis labels');
  check(errors.length === 0, `report: no script errors ${errors.join('; ')}`);
  await page.screenshot({ path: path.join(out, 'report.png'), fullPage: true });
  await page.setViewport({ width: 1000, height: 1100 });
  await page.screenshot({ path: path.join(out, 'report-docs.png'), fullPage: false });
  await page.setViewport({ width: 390, height: 844, isMobile: true, deviceScaleFactor: 1 });
  await page.screenshot({ path: path.join(out, 'report-phone.png'), fullPage: false });
  await page.pdf({ path: path.join(out, 'report.pdf'), format: 'A4' });
  await page.close();
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: args.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--allow-file-access-from-files'],
  });
  try {
    await explainCase(browser, 'explain', '(sigmoid(w*x + b) - t)^2', ['w=0.5', 'x=2', 'b=-0.5', 't=1'],
      ['w', 'x', 'b', 't']);
    await explainCase(browser, 'explain-shared', 'x*x + sin(x*y)', ['x=0.7', 'y=-1.3'], ['x', 'y']);
    await tensorCase(browser);
    await reportCase(browser);
  } catch (e) {
    console.log('FAILED ' + (e && e.stack || e));
    failures++;
  } finally {
    await browser.close();
  }
  console.log(failures ? `${failures} checks failed` : 'all checks passed');
  console.log('pages and screenshots in ' + out);
  process.exit(failures ? 1 : 0);
})();
