/* engine/html/page.js - the script of tg_graph_html's page (embedded by embed.py).
 * Reads the facts from the JSON block #tg-data (written by engine/html.c) and
 * steps through them: step 0 shows the leaves, then the forward pass computes
 * one op per step, then the backward sweep visits one node per step in the
 * order tg_backward used, and the last step shows the leaves' gradients beside
 * their central-difference check. Plain ES5; no network. */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('tg-data').textContent);
  var TIMES = '\u00d7', NORM = '\u2016';

  function num(v) { return typeof v === 'string' ? Number(v) : v; }
  function fmt(v, digits) {
    v = num(v);
    if (v === null || v === undefined) return '\u2013';
    if (!isFinite(v)) return isNaN(v) ? 'NaN' : (v > 0 ? 'inf' : '-inf');
    return String(Number(v.toPrecision(digits || 6)));
  }
  function esc(s) {
    return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;');
  }
  function count(n, one, many) { return n + ' ' + (n === 1 ? one : (many || one + 's')); }
  function code(s) { return '<code>' + esc(s) + '</code>'; }
  function shapeStr(sh) { return '[' + sh.join(', ') + ']'; }
  function isScalarNode(n) { return n.numel === 1; }
  function lab(k) { return D.nodes[k].label; }
  function rootName() { return D.root_name; }
  function dOf(k) { return 'd' + rootName() + '/d' + (k === D.root ? rootName() : lab(k)); }

  /* ---- the steps ---- */
  var forward = [], sweepAt = {}, computedAt = {}, S = [];
  D.nodes.forEach(function (n, k) { if (n.kind === 'op') forward.push(k); });
  S.push({ type: 'start' });
  forward.forEach(function (k, i) { computedAt[k] = S.length; S.push({ type: 'fwd', node: k, i: i }); });
  D.steps.forEach(function (st, i) { sweepAt[st.node] = S.length; S.push({ type: 'bwd', step: st, i: i }); });
  S.push({ type: 'end' });
  var LAST = S.length - 1, cur = 0;
  document.body.setAttribute('data-last', String(LAST));

  /* ---- the SVG: nodes and edges by their titles t0, t1, ... and t0->t2 ---- */
  var svgNodes = {}, svgEdges = [];
  var gs = document.querySelectorAll('#graph svg g.node');
  Array.prototype.forEach.call(gs, function (g) {
    var t = g.querySelector('title');
    var m = t && /^t(\d+)$/.exec(t.textContent.trim());
    if (!m) return;
    var k = Number(m[1]);
    if (!D.nodes[k]) return;
    svgNodes[k] = g;
    g.setAttribute('data-label', D.nodes[k].label);
    g.setAttribute('tabindex', '0');
    t.textContent = describeTitle(k);
    Array.prototype.forEach.call(g.querySelectorAll('text'), function (tx) {
      var w = tx.textContent.trim();
      if (w.indexOf('value ') === 0) tx.setAttribute('data-line', 'value');
      if (w.indexOf('grad ') === 0) tx.setAttribute('data-line', 'grad');
    });
    g.addEventListener('click', function () { showDetails(k); });
    g.addEventListener('keydown', function (e) { if (e.key === 'Enter') showDetails(k); });
  });
  Array.prototype.forEach.call(document.querySelectorAll('#graph svg g.edge'), function (g) {
    var t = g.querySelector('title');
    var m = t && /^t(\d+)\s*->\s*t(\d+)$/.exec(t.textContent.trim());
    if (m) svgEdges.push({ g: g, from: Number(m[1]), to: Number(m[2]) });
  });
  document.body.setAttribute('data-svg-nodes', String(Object.keys(svgNodes).length));
  /* a small graph is drawn at most 1.6 times its natural size, not the page's width */
  (function () {
    var svg = document.querySelector('#graph svg'), m = svg && /^([\d.]+)(pt|px)?$/.exec(svg.getAttribute('width') || '');
    if (m) svg.style.maxWidth = Math.round(Number(m[1]) * (m[2] === 'pt' ? 4 / 3 : 1) * 1.6) + 'px';
  })();

  function describeTitle(k) {
    var n = D.nodes[k];
    var s = n.label + (n.op ? ' = ' + n.op : '') + ' ' + shapeStr(n.shape) + ' ' + n.dtype;
    if (n.value.length <= 8) s += '\nvalue ' + n.value.map(function (v) { return fmt(v); }).join(', ');
    return s + '\n(click for details)';
  }

  /* ---- the explanation of one step ---- */
  function valueText(k) {
    var n = D.nodes[k];
    if (isScalarNode(n)) return fmt(n.value[0], 8);
    return 'shape ' + shapeStr(n.shape) + ', ' + NORM + lab(k) + NORM + ' = ' + fmt(n.norm);
  }
  function callText(k) {
    var n = D.nodes[k];
    var args = n.inputs.map(lab);
    n.params.forEach(function (p) { args.push(fmt(p)); });
    return lab(k) + ' = ' + n.op + '(' + args.join(', ') + ')';
  }
  function docsLink(anchor, text) {
    return '<a href="' + esc(D.docs + anchor) + '">' + esc(text) + '</a>';
  }

  function explainStart() {
    var leaves = [];
    D.nodes.forEach(function (n, k) {
      if (n.kind !== 'op') leaves.push('<li>' + code(n.label) + ' (' + n.kind + ') = ' + esc(valueText(k)) + '</li>');
    });
    return '<h3>Start: the leaves</h3><p>The graph has ' + count(D.nodes.length, 'tensor') + ': ' +
      count(forward.length, 'op result') + ' and ' + count(D.nodes.length - forward.length, 'leaf or constant', 'leaves and constants') +
      '. Step forward to compute the ops one by one in the order they were recorded, ' +
      'then backward to sweep the gradients from the root ' + code(lab(D.root)) + ' back to the leaves.</p><ul>' +
      leaves.join('') + '</ul><p class="note">Keys: right/left arrow to step, Home/End to jump. ' +
      docsLink('#1-the-chain-rule', 'The chain rule, in docs/backprop.md') + '.</p>';
  }

  function explainForward(k, i) {
    var n = D.nodes[k];
    var rows = n.inputs.filter(function (j, p) { return n.inputs.indexOf(j) === p; }).map(function (j) {
      return '<tr><td>' + code(lab(j)) + '</td><td class="num">' + esc(valueText(j)) + '</td></tr>';
    });
    return '<h3>Forward ' + (i + 1) + ' of ' + forward.length + ': ' + esc(callText(k)) + '</h3>' +
      '<div class="formula">formula of ' + code(n.op) + ': ' + code(n.formula) + '</div>' +
      '<div class="tablewrap"><table><thead><tr><th>input</th><th>value</th></tr></thead><tbody>' +
      rows.join('') + '</tbody></table></div>' +
      '<p>result: ' + code(lab(k)) + ' = <span class="num">' + esc(valueText(k)) + '</span>' +
      (isScalarNode(n) ? '' : ' <span class="note">(click the node for its values)</span>') + '</p>' +
      '<p class="note">' + docsLink('#3-forward-and-backward-scalar-formulas', 'Forward and backward, in docs/backprop.md') + '</p>';
  }

  function explainBackward(st, i) {
    var k = st.node, n = D.nodes[k], node = k === D.root ? rootName() : lab(k);
    var up = st.scalar ? fmt(st.upstream, 8) : 'shape ' + shapeStr(n.shape) + ', norm ' + fmt(st.upstream);
    var h = '<h3>Backward ' + (i + 1) + ' of ' + D.steps.length + ': ' + esc(callText(k)) + '</h3>';
    h += '<p>upstream gradient ' + code(dOf(k)) + ' = <span class="num" id="upstream">' + esc(up) + '</span>' +
      (i === 0 ? ' <span class="note">(the seed: d' + esc(rootName()) + '/d' + esc(rootName()) + ' = 1)</span>' : '') + '</p>';
    h += '<div class="formula bwd">rule of ' + code(n.op) + ' (its VJP): ' + code(st.rule) +
      '<br>formula: ' + code(n.formula) + '; inputs in order: ' + code(n.inputs.map(lab).join(', ')) + '</div>';
    var rows = st.inputs.map(function (x) {
      var nm = lab(x.node);
      if (!x.gets_grad) return '<tr><td>' + code(nm) + '</td><td colspan="4" class="note">needs no gradient (' + D.nodes[x.node].kind + ')</td></tr>';
      var sum = x.nth > 1 ? ' <span class="note">(' + x.nth + ' contributions summed)</span>' : '';
      if (st.scalar) {
        return '<tr data-input="' + esc(nm) + '"><td>' + code(nm) + (x.uses > 1 ? ' <span class="note">(used ' + x.uses + 'x)</span>' : '') +
          '</td><td class="num">' + code('d' + node + '/d' + nm) + ' = ' + fmt(x.local) +
          '</td><td class="num">' + TIMES + ' ' + fmt(st.upstream) +
          '</td><td class="num">= ' + fmt(x.contrib) + '</td><td class="num total">' + code(dOf(x.node)) + ' = ' + fmt(x.total) + sum + '</td></tr>';
      }
      var xn = D.nodes[x.node];
      return '<tr data-input="' + esc(nm) + '"><td>' + code(nm) + ' ' + shapeStr(xn.shape) + '</td><td>' + esc(x.jacobian) +
        ' Jacobian, ' + n.numel + ' by ' + xn.numel + '</td><td class="num">' + TIMES + ' ' + NORM + 'upstream' + NORM + ' ' + fmt(st.upstream) +
        '</td><td class="num">' + NORM + 'added' + NORM + ' = ' + fmt(x.contrib) + '</td><td class="num total">' + NORM + dOf(x.node) + NORM + ' = ' + fmt(x.total) + sum + '</td></tr>';
    });
    var head = st.scalar
      ? '<tr><th>input z</th><th>local derivative</th><th>' + TIMES + ' upstream</th><th>= product</th><th>running sum</th></tr>'
      : '<tr><th>input z</th><th>Jacobian structure</th><th>' + TIMES + ' upstream</th><th>= product (norm)</th><th>running sum (norm)</th></tr>';
    h += '<p>each input z receives ' + code(dOf(k) + ' ' + TIMES + ' d' + node + '/dz') + ', added to what it holds:</p>';
    h += '<div class="tablewrap"><table id="step-table"><thead>' + head + '</thead><tbody>' + rows.join('') + '</tbody></table></div>';
    if (!st.scalar) h += '<p class="note">Tensors show norms; click a node for its values and gradient. ' + docsLink('#2-the-jacobian', 'The Jacobian, in docs/backprop.md') + '</p>';
    else h += '<p class="note">' + docsLink('#1-the-chain-rule', 'The chain rule, in docs/backprop.md') + '</p>';
    return h;
  }

  function explainEnd() {
    return '<h3>Done: the sweep reached every leaf</h3><p>The table below the graph lists each leaf\'s gradient as backward computed it, beside the central difference ' +
      code('(f(x + h) - f(x - h)) / 2h') + ' of a replay of the recorded forward pass. ' +
      docsLink('#1-the-chain-rule', 'Why they agree: docs/backprop.md') + '.</p>';
  }

  /* ---- the final table ---- */
  function buildFinal() {
    var body = document.querySelector('#final-table tbody'), rows = [];
    var checks = {};
    (D.checks || []).forEach(function (c) { checks[c.node] = c; });
    D.nodes.forEach(function (n, k) {
      if (n.kind !== 'param') return;
      var c = checks[k];
      if (n.numel === 1) {
        var it = c && c.items[0];
        rows.push('<tr data-leaf="' + esc(n.label) + '"><td>' + code(dOf(k)) + '</td><td class="grad">' +
          (n.grad ? fmt(n.grad[0], 12) : '\u2013') + '</td><td class="numeric">' + (it ? fmt(it.numeric, 10) : 'not checked') +
          '</td><td class="verdict">' + verdictCell(it) + '</td></tr>');
        return;
      }
      var bad = 0, kinks = 0, worst = 0;
      (c ? c.items : []).forEach(function (it) {
        if (it.verdict === 'kink') kinks++; else if (it.verdict !== 'agree') bad++;
        worst = Math.max(worst, Math.abs(num(it.analytic) - num(it.numeric)));
      });
      var v = !c ? 'not checked' : (bad ? 'disagree' : (kinks ? 'kink' : 'agree'));
      rows.push('<tr data-leaf="' + esc(n.label) + '"><td>' + code(dOf(k)) + ' ' + shapeStr(n.shape) + '</td><td class="grad">' +
        NORM + 'grad' + NORM + ' = ' + fmt(n.grad_norm) + '</td><td class="numeric">' +
        (c ? c.checked + ' of ' + n.numel + ' elements, max |difference| ' + fmt(worst, 3) : 'not checked') +
        '</td><td class="verdict"><span class="verdict-' + v.replace(' ', '-') + '">' + esc(v) + '</span>' +
        (c ? ' (' + kinks + ' kinks, ' + bad + ' other)' : '') + '</td></tr>');
    });
    body.innerHTML = rows.join('');
    var note = D.no_check ? 'No numeric check: ' + D.no_check + '.' :
      (D.checks.length ? 'Numeric: central differences with h = 1e-6 max(1, |x|) (f64), judged by tg_gradcheck\'s comparison.' :
        'No leaf requires a gradient (or the root is not a scalar and no seed was given): nothing to check.');
    document.getElementById('final-note').textContent = note;
  }
  function verdictCell(it) {
    if (!it) return 'not checked';
    var s = '<span class="verdict-' + it.verdict.replace(' ', '-') + '">' + esc(it.verdict) + '</span>';
    if (it.verdict === 'kink') s += ' <span class="note">(one-sided: ' + fmt(it.left) + ' and ' + fmt(it.right) + ')</span>';
    return s;
  }

  /* ---- details of a node (click) ---- */
  function valuesTable(vals, n) {
    var cols = n.shape.length ? n.shape[n.shape.length - 1] : 1, rows = [], row = [];
    vals.forEach(function (v, i) {
      row.push('<td class="num">' + fmt(v) + '</td>');
      if ((i + 1) % cols === 0 || i === vals.length - 1) { rows.push('<tr>' + row.join('') + '</tr>'); row = []; }
    });
    var more = n.numel > vals.length ? '<p class="note">first ' + vals.length + ' of ' + n.numel + ' elements (row-major)</p>' : '';
    return '<div class="tablewrap"><table class="values">' + rows.join('') + '</table></div>' + more;
  }
  function showDetails(k) {
    var n = D.nodes[k], s = S[cur];
    var swept = cur === LAST || (sweepAt[k] !== undefined && sweepAt[k] <= cur);
    var known = n.kind !== 'op' || computedAt[k] <= cur;
    var h = '<h3>' + esc(n.label) + (n.op ? ' = ' + esc(n.op) : '') + ' <span class="note">' + esc(n.kind) + ', ' +
      shapeStr(n.shape) + ' ' + n.dtype + '</span></h3>';
    h += '<p><b>value</b></p>' + (known ? valuesTable(n.value, n) : '<p class="note">not computed yet at this step</p>');
    h += '<p><b>gradient ' + code(dOf(k)) + '</b></p>';
    if (!n.grad) h += '<p class="note">none (needs no gradient)</p>';
    else h += swept ? valuesTable(n.grad, n) : '<p class="note">not complete yet at this step (' + esc(s.type) + ')</p>';
    document.getElementById('details').innerHTML = h;
  }

  /* ---- the step list ---- */
  function summary(s) {
    if (s.type === 'start') return '<span class="kind">start</span> the leaves';
    if (s.type === 'end') return '<span class="kind">end</span> gradients of the leaves, checked';
    if (s.type === 'fwd') return '<span class="kind">forward</span> ' + esc(callText(s.node)) + ' = ' + esc(valueText(s.node));
    var st = s.step, parts = st.inputs.filter(function (x) { return x.gets_grad; }).map(function (x) {
      return st.scalar ? dOf(x.node) + ' += ' + fmt(x.local) + ' ' + TIMES + ' ' + fmt(st.upstream) + ' = ' + fmt(x.contrib)
        : NORM + dOf(x.node) + NORM + ' = ' + fmt(x.total);
    });
    return '<span class="kind">backward</span> ' + esc(callText(st.node)) + ': ' + esc(parts.join('; ') || 'nothing to pass on');
  }
  var list = document.getElementById('steps');
  list.innerHTML = S.map(function (s, i) { return '<li data-step="' + i + '">' + summary(s) + '</li>'; }).join('');
  Array.prototype.forEach.call(list.children, function (li) {
    li.addEventListener('click', function () { go(Number(li.getAttribute('data-step'))); });
  });

  /* ---- showing step i ---- */
  function setClass(el, c, on) { if (el) el.classList[on ? 'add' : 'remove'](c); }
  /* keeps the current node in view when the graph scrolls sideways (phones) */
  function follow(g) {
    var box = document.getElementById('graph');
    if (!g || box.scrollWidth <= box.clientWidth) return;
    var r = g.getBoundingClientRect(), b = box.getBoundingClientRect();
    box.scrollLeft += (r.left + r.width / 2) - (b.left + b.width / 2);
  }
  function go(i) {
    cur = Math.max(0, Math.min(LAST, i));
    var s = S[cur];
    D.nodes.forEach(function (n, k) {
      var g = svgNodes[k];
      if (!g) return;
      var known = n.kind !== 'op' || computedAt[k] <= cur;
      var swept = cur === LAST || (sweepAt[k] !== undefined && sweepAt[k] <= cur);
      setClass(g, 'pending', !known);
      setClass(g, 'swept', swept && n.kind === 'op');
      setClass(g, 'current', (s.type === 'fwd' && s.node === k) || (s.type === 'bwd' && s.step.node === k));
      var operand = false;
      if (s.type === 'fwd') operand = D.nodes[s.node].inputs.indexOf(k) >= 0;
      if (s.type === 'bwd') operand = D.nodes[s.step.node].inputs.indexOf(k) >= 0;
      setClass(g, 'operand', operand);
      Array.prototype.forEach.call(g.querySelectorAll('text[data-line]'), function (tx) {
        var line = tx.getAttribute('data-line');
        var show = line === 'value' ? known : (n.kind === 'op' ? swept : cur === LAST);
        setClass(tx, 'hidden-text', !show);
      });
    });
    svgEdges.forEach(function (e) {
      setClass(e.g, 'active-fwd', s.type === 'fwd' && e.to === s.node);
      setClass(e.g, 'active-bwd', s.type === 'bwd' && e.to === s.step.node);
    });
    if (s.type === 'fwd') follow(svgNodes[s.node]);
    if (s.type === 'bwd') follow(svgNodes[s.step.node]);
    var ex = document.getElementById('explain');
    if (s.type === 'start') ex.innerHTML = explainStart();
    else if (s.type === 'fwd') ex.innerHTML = explainForward(s.node, s.i);
    else if (s.type === 'bwd') ex.innerHTML = explainBackward(s.step, s.i);
    else ex.innerHTML = explainEnd();
    document.getElementById('details').innerHTML = '';
    setClass(document.getElementById('final'), 'pending', cur !== LAST);
    document.getElementById('final').setAttribute('data-ready', cur === LAST ? 'yes' : 'no');
    var phase = s.type === 'fwd' ? 'forward' : (s.type === 'bwd' ? 'backward' : s.type);
    document.getElementById('counter').textContent = 'step ' + cur + ' of ' + LAST + ' (' + phase + ')';
    document.getElementById('slider').value = String(cur);
    document.body.setAttribute('data-step', String(cur));
    Array.prototype.forEach.call(list.children, function (li, j) { setClass(li, 'current', j === cur); });
  }

  /* ---- controls ---- */
  var slider = document.getElementById('slider');
  slider.max = String(LAST);
  slider.addEventListener('input', function () { go(Number(slider.value)); });
  document.getElementById('first').addEventListener('click', function () { go(0); });
  document.getElementById('prev').addEventListener('click', function () { go(cur - 1); });
  document.getElementById('next').addEventListener('click', function () { go(cur + 1); });
  document.getElementById('last').addEventListener('click', function () { go(LAST); });
  document.addEventListener('keydown', function (e) {
    if (e.target === slider || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'ArrowRight' || e.key === 'n') { go(cur + 1); e.preventDefault(); }
    else if (e.key === 'ArrowLeft' || e.key === 'p') { go(cur - 1); e.preventDefault(); }
    else if (e.key === 'Home') { go(0); e.preventDefault(); }
    else if (e.key === 'End') { go(LAST); e.preventDefault(); }
  });
  window.addEventListener('beforeprint', function () { go(LAST); });
  buildFinal();
  go(0);
})();
