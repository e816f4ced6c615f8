// The history browser: plain JavaScript over the JSON API of `skald web`
// (tools/README.md documents it). The URL's hash says what is shown:
// #pid=ID&seq=N (or seq=last), so that a step can be bookmarked or shared.
'use strict';

const token = new URLSearchParams(location.search).get('token');
const $ = (id) => document.getElementById(id);
const PAGE = 200;

async function api(path, params) {
  const u = new URL('api/' + path, location.href);
  u.search = '';
  for (const [k, v] of Object.entries(params || {}))
    if (v !== null && v !== undefined && v !== '') u.searchParams.set(k, v);
  const r = await fetch(u, { headers: token ? { Authorization: 'Bearer ' + token } : {} });
  const body = await r.json().catch(() => null);
  if (!r.ok)
    throw new Error(body && body.error ? `${body.error} (${body.code})` : `${r.status} ${r.statusText}`);
  return body;
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : String(k ?? ''));
  return e;
}

const compact = (v) => JSON.stringify(v);

function showError(err) {
  $('error').hidden = !err;
  $('error').textContent = err ? String(err.message || err) : '';
}

// ---------------------------------------------------------------- ids

let idsNext = null;

async function searchIds(append) {
  const params = { prefix: $('prefix').value, type: $('type').value, limit: 50 };
  if (append) params.after = idsNext;
  else $('ids').textContent = '';
  try {
    const page = await api('ids', params);
    for (const id of page.ids) {
      const a = el('a', { href: '#pid=' + encodeURIComponent(id.persistence_id) + '&seq=last' },
        el('span', {}, id.persistence_id), el('span', { class: 'n' }, id.highest_seq));
      a.dataset.pid = id.persistence_id;
      $('ids').append(el('li', {}, a));
    }
    idsNext = page.next;
    $('more-ids').hidden = !idsNext;
    $('ids-status').textContent = $('ids').children.length ? '' : 'no persistence ids match';
    markCurrentId();
  } catch (e) {
    $('ids-status').textContent = String(e.message);
  }
}

function markCurrentId() {
  for (const a of $('ids').querySelectorAll('a'))
    a.classList.toggle('current', a.dataset.pid === cur.pid);
}

// ---------------------------------------------------------------- one entity

// What is loaded of the entity on show: its steps by seq (0 is the state
// before any event), in order.
let cur = { pid: null, highest: 0, steps: new Map(), seqs: [], seq: null, loadedTo: 0 };

function sortedInsert(seq) {
  const s = cur.seqs;
  if (s.includes(seq)) return;
  s.push(seq);
  s.sort((a, b) => a - b);
}

async function loadPage(from) {
  const page = await api('entities/' + encodeURIComponent(cur.pid) + '/events', { from, limit: PAGE });
  cur.highest = page.highest_seq;
  if (page.initial) { cur.steps.set(0, page.initial); sortedInsert(0); }
  for (const step of page.steps) { cur.steps.set(step.seq, step); sortedInsert(step.seq); }
  const end = page.next ? page.next - 1 : cur.highest;
  cur.loadedTo = Math.max(cur.loadedTo, end);
  $('more-events').hidden = !page.next;
  renderTimeline();
  return page;
}

async function openEntity(pid) {
  cur = { pid, highest: 0, steps: new Map(), seqs: [], seq: null, loadedTo: 0, type: null };
  $('empty').hidden = true;
  $('view').hidden = false;
  $('pid').textContent = pid;
  $('entity').dataset.pid = pid;
  $('timeline').tBodies[0].textContent = '';
  showError(null);
  const summary = await api('entities/' + encodeURIComponent(pid));
  cur.highest = summary.highest_seq;
  cur.type = summary.entity_type;
  $('meta').textContent = summary.entity_type
    ? `entity type ${summary.entity_type}`
    : 'no entity type loaded for this id: events only (start skald web with --entity LIB.so:TYPE)';
  $('highest').textContent = cur.highest;
  markCurrentId();
  loadSnapshots();
  await loadPage(1);
}

// Makes sure the step at seq (or the nearest before it) is loaded.
async function ensure(seq) {
  while (seq > cur.loadedTo && cur.loadedTo < cur.highest) await loadPage(cur.loadedTo + 1);
}

function nearestAtOrBefore(seq) {
  let best = null;
  for (const s of cur.seqs) if (s <= seq) best = s;
  return best;
}

async function go(seq) {
  seq = Math.max(0, Math.min(seq, cur.highest));
  await ensure(seq);
  const at = nearestAtOrBefore(seq);
  if (at === null) return;
  cur.seq = at;
  render();
}

async function step(delta) {
  if (cur.seq === null) return;
  const i = cur.seqs.indexOf(cur.seq);
  if (delta > 0 && i === cur.seqs.length - 1 && cur.loadedTo < cur.highest) await loadPage(cur.loadedTo + 1);
  const j = cur.seqs.indexOf(cur.seq) + delta;
  if (j < 0 || j >= cur.seqs.length) return;
  setHash(cur.seqs[j]);
}

function setHash(seq) {
  const h = '#pid=' + encodeURIComponent(cur.pid) + '&seq=' + seq;
  if (location.hash !== h) location.hash = h;
  else go(seq);
}

function render() {
  const st = cur.steps.get(cur.seq);
  $('seq').textContent = cur.seq;
  $('entity').dataset.seq = cur.seq;
  $('state-title').textContent = cur.seq === 0 ? 'init, before any event' : 'seq ' + cur.seq;
  $('state-printed').textContent = st.printed ?? (st.state ? '' : '(no state: events only)');
  $('state-printed').hidden = st.printed === null && !!st.state;
  $('state-json').textContent = st.state ? JSON.stringify(st.state, null, 2) : 'null';
  $('state-json-box').open = st.printed === null && !!st.state;
  const ev = $('event');
  ev.textContent = '';
  if (st.event) {
    for (const k of ['seq', 'type', 'version', 'timestamp', 'writer', 'offset'])
      ev.append(el('tr', {}, el('th', {}, k), el('td', {}, st.event[k])));
    ev.append(el('tr', {}, el('th', {}, 'data'), el('td', {}, compact(st.event.data))));
  } else {
    ev.append(el('tr', {}, el('td', {}, 'none yet: the state init gives, before any event')));
  }
  for (const tr of $('timeline').tBodies[0].rows)
    tr.classList.toggle('current', Number(tr.dataset.seq) === cur.seq);
  $('prev').disabled = cur.seqs.indexOf(cur.seq) <= 0;
  $('next').disabled = cur.seq >= cur.highest;
  document.title = `${cur.pid} @ ${cur.seq} · Skald`;
  renderChanges();
}

async function renderChanges() {
  const list = $('changes');
  list.textContent = '';
  const i = cur.seqs.indexOf(cur.seq);
  if (i <= 0) { list.append(el('li', { class: 'muted' }, 'nothing before this step')); return; }
  const from = cur.seqs[i - 1], to = cur.seq;
  try {
    const d = await api('entities/' + encodeURIComponent(cur.pid) + '/diff', { from, to });
    if (cur.seq !== to) return;
    if (!d.changes.length)
      list.append(el('li', { class: 'muted' }, cur.type ? 'the state did not change' : 'no state to compare'));
    for (const c of d.changes) {
      const li = el('li', {}, (c.path || '/') + ': ');
      if ('before' in c) li.append(el('span', { class: 'before' }, compact(c.before)));
      if ('before' in c && 'after' in c) li.append(' \u2192 ');
      if ('after' in c) li.append(el('span', { class: 'after' }, compact(c.after)));
      list.append(li);
    }
  } catch (e) {
    list.append(el('li', { class: 'error' }, e.message));
  }
}

function renderTimeline() {
  const body = $('timeline').tBodies[0];
  body.textContent = '';
  for (const seq of cur.seqs) {
    if (seq === 0) continue;
    const e = cur.steps.get(seq).event;
    const tr = el('tr', { onclick: () => setHash(seq) }, el('td', {}, seq), el('td', {}, e.timestamp),
      el('td', {}, e.type), el('td', {}, e.version), el('td', { class: 'data' }, compact(e.data)));
    tr.dataset.seq = seq;
    tr.classList.toggle('current', seq === cur.seq);
    body.append(tr);
  }
}

async function loadSnapshots() {
  const body = $('snapshots').tBodies[0];
  body.textContent = '';
  $('snapshots-status').textContent = '';
  try {
    const r = await api('entities/' + encodeURIComponent(cur.pid) + '/snapshots', { limit: 50 });
    for (const s of r.snapshots)
      body.append(el('tr', {}, el('td', {}, el('a', { href: '#pid=' + encodeURIComponent(cur.pid) + '&seq=' + s.seq }, s.seq)),
        el('td', {}, s.version), el('td', {}, s.timestamp), el('td', {}, s.size + ' B'),
        el('td', { class: 'data' }, compact(s.data))));
    $('snapshots-status').textContent = r.snapshots.length ? (r.more ? 'the newest 50' : '') : 'no snapshots';
  } catch (e) {
    $('snapshots-status').textContent = e.message;
  }
}

async function goTime(at) {
  try {
    const r = await api('entities/' + encodeURIComponent(cur.pid) + '/state', { at });
    $('note').textContent = `as of ${r.at}: seq ${r.seq}` +
      (r.next ? `; the next event, seq ${r.next.seq}, was written at ${r.next.timestamp}` : '; nothing was written after it');
    setHash(r.seq);
  } catch (e) {
    showError(e);
  }
}

// ---------------------------------------------------------------- the hash

async function route() {
  const h = new URLSearchParams(location.hash.slice(1));
  const pid = h.get('pid');
  if (!pid) return;
  try {
    if (pid !== cur.pid) await openEntity(pid);
    const seq = h.get('seq');
    await go(seq === null || seq === 'last' ? cur.highest : Number(seq));
  } catch (e) {
    $('empty').hidden = true;
    $('view').hidden = false;
    showError(e);
  }
}

// ---------------------------------------------------------------- live

let live = null;

async function toggleLive() {
  if (live) { live.abort(); return; }
  live = new AbortController();
  $('live-toggle').textContent = 'stop';
  $('live-status').textContent = 'following new events\u2026';
  const body = $('live-events').tBodies[0];
  try {
    const u = new URL('api/stream', location.href);
    u.search = '';
    const r = await fetch(u, { signal: live.signal, headers: token ? { Authorization: 'Bearer ' + token } : {} });
    if (!r.ok) throw new Error((await r.json()).error);
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const e = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (e.error) throw new Error(e.error);
        const link = el('a', { href: '#pid=' + encodeURIComponent(e.persistence_id) + '&seq=' + e.seq }, e.persistence_id);
        body.prepend(el('tr', {}, el('td', {}, e.offset), el('td', {}, link), el('td', {}, e.seq),
          el('td', {}, e.type), el('td', { class: 'data' }, compact(e.data))));
        while (body.rows.length > 200) body.deleteRow(-1);
      }
    }
    $('live-status').textContent = 'the stream ended';
  } catch (e) {
    $('live-status').textContent = e.name === 'AbortError' ? 'stopped' : e.message;
  }
  live = null;
  $('live-toggle').textContent = 'watch';
}

// ---------------------------------------------------------------- start

async function start() {
  let timer = null;
  $('prefix').addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => searchIds(false), 200); });
  $('type').addEventListener('change', () => searchIds(false));
  $('search').addEventListener('submit', (e) => { e.preventDefault(); searchIds(false); });
  $('more-ids').addEventListener('click', () => searchIds(true));
  $('more-events').addEventListener('click', () => loadPage(cur.loadedTo + 1).catch(showError));
  $('first').addEventListener('click', () => setHash(cur.seqs[0] ?? 0));
  $('prev').addEventListener('click', () => step(-1));
  $('next').addEventListener('click', () => step(1));
  $('last').addEventListener('click', () => setHash(cur.highest));
  $('goto-seq').addEventListener('submit', (e) => { e.preventDefault(); setHash(Number($('seq-input').value)); });
  $('goto-time').addEventListener('submit', (e) => { e.preventDefault(); goTime($('time-input').value.trim()); });
  $('live-toggle').addEventListener('click', toggleLive);
  document.addEventListener('keydown', (e) => {
    if (e.target.tagName === 'INPUT' || cur.seq === null) return;
    if (e.key === 'ArrowLeft') step(-1);
    else if (e.key === 'ArrowRight') step(1);
    else if (e.key === 'Home') setHash(cur.seqs[0] ?? 0);
    else if (e.key === 'End') setHash(cur.highest);
  });
  window.addEventListener('hashchange', route);
  try {
    const info = await api('info');
    $('store').textContent = info.store + ' store';
    for (const t of info.entity_types) $('type').append(el('option', { value: t.name }, t.name));
  } catch (e) {
    $('ids-status').textContent = e.message;
  }
  await Promise.all([searchIds(false), route()]);
}

start();
