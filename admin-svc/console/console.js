// The web console: reads admin-svc's /v1/admin/... and /v1/schemas/... routes
// with the user's token (sessionStorage, sent as Bearer) and draws them. No
// framework; every value is put in the page as text, never as markup.
'use strict';

(() => {
  const TOKEN_KEY = 'cqrs.console.token';
  const $ = (sel) => document.querySelector(sel);
  const sections = {}; // name -> whether this admin-svc serves it (/console/session.json)
  let authOn = false;

  // ---- helpers ----
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'onclick') e.addEventListener('click', v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '-' : String(c)));
    return e;
  }
  const num = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '-');
  function duration(s) {
    if (typeof s !== 'number' || s < 0) return '-';
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
    return (h ? h + ':' + String(m).padStart(2, '0') : m) + ':' + String(r).padStart(2, '0');
  }
  // Replaces a table's rows (each with a data-key) and gives the focus back to
  // the same button of the same row: polling must not take it from a keyboard user.
  function replaceRows(tbody, rows) {
    const a = document.activeElement;
    const tr = a && tbody.contains(a) ? a.closest('tr') : null;
    const key = tr ? tr.getAttribute('data-key') : null, label = a ? a.textContent : null;
    tbody.replaceChildren(...rows);
    if (key === null) return;
    const same = rows.find((r) => r.getAttribute('data-key') === key);
    const b = same && Array.from(same.querySelectorAll('button')).find((x) => x.textContent === label);
    if (b) b.focus();
  }
  function say(text, bad) {
    const s = $('#status');
    s.textContent = text;
    s.classList.toggle('bad', !!bad);
  }

  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (authOn && token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    if (!res.ok) {
      const msg = (json && (json.error || json.message)) || res.statusText;
      if (res.status === 401 || res.status === 403) askToken(res.status + ': ' + msg);
      throw new HttpError(res.status, msg);
    }
    return json;
  }

  function fail(where, e) {
    say(where + ': ' + (e instanceof HttpError ? e.status + ' ' + e.message : e.message), true);
  }

  function unavailable(name, yes) {
    const s = document.getElementById(name);
    s.querySelector('[data-unavailable]').hidden = !yes;
    s.querySelectorAll('form, table, ul').forEach((t) => { t.hidden = yes; });
  }

  // ---- token ----
  function askToken(message) {
    const f = $('#token-form');
    f.hidden = false;
    if (message) say(message + ' — give an admin token', true);
    $('#token-input').focus();
  }
  $('#token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('#token-input').value.trim());
    $('#token-input').value = '';
    say('token set');
    refreshAll();
  });
  $('#token-forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    say('token forgotten');
    askToken();
  });

  // ---- projections ----
  let projectionNames = [];
  async function loadProjections() {
    if (!sections.projections) return;
    let data;
    try { data = await api('GET', '/v1/admin/projections'); } catch (e) { return fail('projections', e); }
    const rows = (data.items || []).map((p) => el('tr', { 'data-key': p.projection, 'data-projection': p.projection },
      el('td', {}, p.projection), el('td', { class: 'state-' + p.state }, p.state),
      el('td', { class: 'num', title: (p.lag || []).map((l) => 'partition ' + l.partition + ': ' + l.lag).join(', ') },
        num(p.lagTotal)),
      el('td', { class: 'num' }, num(p.eventsApplied)), el('td', { class: p.lastError ? 'error' : '' }, p.lastError),
      el('td', {}, p.updatedAt),
      el('td', {}, el('button', { type: 'button', onclick: () => projectionAction(p.projection, 'pause') }, 'Pause'),
        el('button', { type: 'button', onclick: () => projectionAction(p.projection, 'resume') }, 'Resume'))));
    replaceRows($('#projections-table tbody'), rows);
    const names = (data.items || []).map((p) => p.projection);
    if (names.join() !== projectionNames.join()) {
      projectionNames = names;
      const sel = $('#replay-projection'), was = sel.value;
      sel.replaceChildren(...names.map((n) => el('option', { value: n }, n)));
      if (names.includes(was)) sel.value = was;
    }
  }
  async function projectionAction(p, what) {
    try {
      await api('POST', '/v1/admin/projections/' + encodeURIComponent(p) + '/' + what);
      say(p + ': ' + what + ' requested');
    } catch (e) { fail(p + ' ' + what, e); }
    loadProjections();
  }

  // ---- replay form: dry run first, then Apply ----
  let dryRunOf = null; // the request the shown dry run answered
  function replayRequest() {
    const r = { projection: $('#replay-projection').value, from: $('#replay-from').value.trim() };
    const t = $('#replay-tenant').value.trim();
    if (t) r.tenant = t;
    return r;
  }
  ['#replay-projection', '#replay-from', '#replay-tenant'].forEach((id) => $(id).addEventListener('input', () => {
    $('#dryrun-result').hidden = true; // a changed form needs a new dry run
    dryRunOf = null;
  }));
  $('#replay-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const req = replayRequest();
    let d;
    try { d = await api('POST', '/v1/admin/replays', Object.assign({ dryRun: true }, req)); } catch (e) {
      $('#dryrun-result').hidden = true;
      return fail('dry run', e);
    }
    dryRunOf = req;
    $('#dryrun-summary').textContent = 'Replay of ' + d.projection + ' from ' + d.from + ' for ' +
      (d.tenant ? 'tenant ' + d.tenant : 'every tenant') + '. Nothing has changed yet.';
    $('#dryrun-table tbody').replaceChildren(...(d.partitions || []).map((p) => el('tr', {},
      el('td', { class: 'num' }, p.partition), el('td', { class: 'num' }, num(p.fromOffset)),
      el('td', { class: 'num' }, num(p.endOffset)), el('td', { class: 'num' }, num(p.events)))));
    $('#dryrun-events').textContent = num(d.events);
    $('#dryrun-aggregates').textContent = d.aggregates == null ? 'unknown' : num(d.aggregates);
    $('#dryrun-seconds').textContent = typeof d.estimatedSeconds === 'number' ? d.estimatedSeconds.toFixed(1) + ' s' : '-';
    $('#dryrun-result').hidden = false;
    $('#replay-apply').disabled = false;
    say('dry run done: ' + num(d.events) + ' events');
    $('#replay-apply').focus();
  });
  $('#replay-apply').addEventListener('click', async () => {
    if (!dryRunOf) return;
    $('#replay-apply').disabled = true;
    try {
      const r = await api('POST', '/v1/admin/replays', Object.assign({}, dryRunOf, { dryRun: false }));
      say('replay ' + r.replayId + ' started');
      $('#dryrun-result').hidden = true;
      dryRunOf = null;
      loadReplays();
    } catch (e) {
      $('#replay-apply').disabled = false;
      fail('apply', e);
    }
  });

  // ---- replays with progress bars ----
  function progressBar(r) {
    const pc = r.state === 'completed' ? 100 : r.total > 0 ? Math.min(100, Math.floor((r.applied * 100) / r.total)) : 0;
    const bar = el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100',
      'aria-valuenow': String(pc), 'aria-label': 'replay ' + r.replayId + ' progress' },
    el('span', {}), el('em', {}, pc + '% (' + num(r.applied) + ' / ' + num(r.total) + ')'));
    bar.firstChild.style.width = pc + '%';
    return bar;
  }
  async function loadReplays() {
    if (!sections.replays) return;
    let data;
    try { data = await api('GET', '/v1/admin/replays'); } catch (e) { return fail('replays', e); }
    const act = (r, what, label) => el('button', { type: 'button', onclick: () => replayAction(r.replayId, what) }, label);
    replaceRows($('#replays-table tbody'), (data.items || []).map((r) => {
      const live = ['pending', 'running', 'paused'].includes(r.state);
      const actions = el('td', {});
      if (r.state === 'running' || r.state === 'pending') actions.append(act(r, 'pause', 'Pause'));
      if (r.state === 'paused') actions.append(act(r, 'resume', 'Resume'));
      if (live) actions.append(act(r, 'cancel', 'Cancel'));
      return el('tr', { 'data-key': r.replayId, 'data-replay-id': r.replayId, 'data-state': r.state },
        el('td', {}, r.replayId), el('td', {}, r.projection), el('td', {}, r.from + (r.tenant ? ' (' + r.tenant + ')' : '')),
        el('td', { class: 'state-' + r.state, title: r.error || '' }, r.state), el('td', {}, progressBar(r)),
        el('td', { class: 'num' }, typeof r.rate === 'number' ? num(Math.round(r.rate)) + '/s' : '-'),
        el('td', { class: 'num' }, live ? duration(r.etaSeconds) : '-'), actions);
    }));
  }
  async function replayAction(id, what) {
    try {
      await api('POST', '/v1/admin/replays/' + encodeURIComponent(id) + '/' + what);
      say('replay ' + id + ': ' + what);
    } catch (e) { fail('replay ' + what, e); }
    loadReplays();
  }

  // ---- dead letters ----
  async function loadDlq() {
    if (!sections.dlq) return;
    const p = $('#dlq-projection').value.trim();
    let data;
    try { data = await api('GET', '/v1/admin/dlq' + (p ? '?projection=' + encodeURIComponent(p) : '')); } catch (e) {
      return fail('dead letters', e);
    }
    replaceRows($('#dlq-table tbody'), (data.items || []).map((d) => el('tr', { 'data-key': d.id, 'data-dlq-id': d.id },
      el('td', {}, d.id), el('td', {}, d.projection), el('td', {}, d.eventType), el('td', {}, d.state),
      el('td', {}, d.deadAt), el('td', { class: 'error' }, d.error),
      el('td', {}, el('button', { type: 'button', onclick: () => showDlq(d.id) }, 'Show'),
        d.state === 'dead' ? el('button', { type: 'button', onclick: () => redrive(d.id) }, 'Redrive') : '',
        d.state === 'dead' ? el('button', { type: 'button', onclick: () => discard(d.id) }, 'Discard') : ''))));
  }
  async function showDlq(id) {
    try {
      const d = await api('GET', '/v1/admin/dlq/' + encodeURIComponent(id));
      const pre = $('#dlq-detail');
      pre.textContent = JSON.stringify(d, null, 2);
      pre.hidden = false;
      pre.focus();
    } catch (e) { fail('dead letter ' + id, e); }
  }
  async function redrive(id) {
    try {
      await api('POST', '/v1/admin/dlq/' + encodeURIComponent(id) + '/redrive');
      say('dead letter ' + id + ' redriven');
    } catch (e) { fail('redrive', e); }
    loadDlq();
  }
  let discarding = null;
  function discard(id) {
    discarding = id;
    $('#discard-id').textContent = id;
    $('#discard-reason').value = '';
    $('#discard-dialog').showModal();
  }
  $('#discard-cancel').addEventListener('click', () => $('#discard-dialog').close());
  $('#discard-form').addEventListener('submit', async () => {
    const id = discarding, reason = $('#discard-reason').value.trim();
    if (!id || !reason) return;
    try {
      await api('POST', '/v1/admin/dlq/' + encodeURIComponent(id) + '/discard', { reason });
      say('dead letter ' + id + ' discarded');
    } catch (e) { fail('discard', e); }
    loadDlq();
  });
  $('#dlq-filter').addEventListener('submit', (ev) => { ev.preventDefault(); loadDlq(); });

  // ---- sagas ----
  async function loadSagas() {
    if (!sections.sagas) return;
    let data;
    try { data = await api('GET', '/v1/admin/sagas'); } catch (e) { return fail('sagas', e); }
    replaceRows($('#sagas-table tbody'), (data.items || []).map((s) => el('tr', { 'data-key': s.sagaId },
      el('td', {}, s.sagaId), el('td', {}, s.type), el('td', { class: 'state-' + s.state }, s.state), el('td', {}, s.key),
      el('td', {}, s.tenant), el('td', {}, s.updatedAt),
      el('td', {}, el('button', { type: 'button', onclick: () => showSaga(s.sagaId) }, 'Show')))));
  }
  async function showSaga(id) {
    try {
      const s = await api('GET', '/v1/admin/sagas/' + encodeURIComponent(id));
      const pre = $('#saga-detail');
      pre.textContent = JSON.stringify(s, null, 2);
      pre.hidden = false;
      pre.focus();
    } catch (e) { fail('saga ' + id, e); }
  }

  // ---- schemas ----
  async function loadSchemas() {
    if (!sections.schemas) return;
    let subjects;
    try { subjects = await api('GET', '/v1/schemas/subjects'); } catch (e) { return fail('schemas', e); }
    $('#schemas-list').replaceChildren(...(subjects || []).map((s) => el('li', {},
      el('button', { type: 'button', onclick: () => showSchema(s) }, s))));
  }
  async function showSchema(subject) {
    try {
      const s = await api('GET', '/v1/schemas/subjects/' + encodeURIComponent(subject) + '/versions/latest');
      let schema = s.schema;
      try { schema = JSON.stringify(JSON.parse(s.schema), null, 2); } catch (e) { /* not JSON: as it is */ }
      const pre = $('#schema-detail');
      pre.textContent = subject + ' version ' + s.version + ' (id ' + s.id + ')\n\n' + schema;
      pre.hidden = false;
      pre.focus();
    } catch (e) { fail('schema ' + subject, e); }
  }

  // ---- start ----
  function refreshAll() {
    loadProjections();
    loadReplays();
    loadDlq();
    loadSagas();
    loadSchemas();
  }
  const ready = () => !authOn || sessionStorage.getItem(TOKEN_KEY);

  async function start() {
    try {
      const session = await api('GET', '/console/session.json');
      authOn = !!session.auth;
      // A section whose routes this admin-svc does not serve is not asked for.
      Object.assign(sections, session.sections || {});
    } catch (e) { return fail('console start', e); }
    for (const name of ['projections', 'replays', 'dlq', 'sagas', 'schemas']) unavailable(name, !sections[name]);
    $('#replay').hidden = !sections.replays;
    if (authOn) $('#token-form').hidden = false;
    if (!ready()) {
      askToken();
      say('this admin-svc needs a token with scope admin or platform:admin');
    } else {
      say(authOn ? 'using the token of this session' : 'authentication is off');
    }
    if (ready()) refreshAll();
    setInterval(() => { if (ready()) loadProjections(); }, 2000);
    setInterval(() => { if (ready()) loadReplays(); }, 1000);
    setInterval(() => { if (ready()) { loadDlq(); loadSagas(); } }, 10000);
  }
  start();
})();
