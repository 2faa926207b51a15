// intercomm console: plain JavaScript, no build step. It talks to the gateway only through
// its public HTTP API (plus /console/api/routes for which workers are bound), so it doubles
// as an example client.
'use strict';

const $ = (selector) => document.querySelector(selector);
const FINAL = ['succeeded', 'failed', 'expired'];

const ui = {
  openapi: null,        // /openapi.json
  routes: [],           // /console/api/routes .methods
  devMode: false,
  token: sessionStorage.getItem('intercomm.token') || '',
  sub: null,
  stream: null,         // AbortController of the open /v1/events stream
  current: null,        // job id shown in the job panel
  jobs: new Map(),      // job id -> job resource, the subject's recent jobs
  via: new Map(),       // job id -> how its latest state arrived
  metrics: { at: 0, accepted: 0, samples: [] },
};

// ---- small helpers -------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function pretty(value) { return JSON.stringify(value, null, 2); }

function jwtClaims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const text = atob(part + '='.repeat((4 - (part.length % 4)) % 4));
    return JSON.parse(decodeURIComponent(escape(text)));
  } catch (_) {
    return null;
  }
}

function authHeaders(extra) {
  return Object.assign({ Authorization: 'Bearer ' + ui.token }, extra || {});
}

// Resolve a local "$ref" (#/components/...) against the OpenAPI document.
function deref(schema) {
  let seen = 0;
  while (schema && typeof schema === 'object' && typeof schema.$ref === 'string' && seen++ < 16) {
    const ref = schema.$ref;
    if (!ref.startsWith('#/')) break;
    let target = ui.openapi;
    for (const raw of ref.slice(2).split('/')) {
      const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      target = target ? target[key] : undefined;
    }
    if (!target) break;
    schema = Object.assign({}, target, Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$ref')));
  }
  return schema || {};
}

function paramsSchema(method) {
  const schemas = (ui.openapi && ui.openapi.components && ui.openapi.components.schemas) || {};
  return deref(schemas[method + '.params'] || {});
}

// ---- sign-in -------------------------------------------------------------------------------

function setToken(token) {
  const claims = token ? jwtClaims(token) : null;
  $('#signin-error').textContent = '';
  if (token && (!claims || !claims.sub)) {
    $('#signin-error').textContent = 'That is not a JWT with a `sub` claim.';
    return;
  }
  ui.token = token || '';
  ui.sub = claims ? claims.sub : null;
  if (ui.token) sessionStorage.setItem('intercomm.token', ui.token);
  else sessionStorage.removeItem('intercomm.token');
  ui.jobs.clear();
  ui.via.clear();
  renderRecent();
  $('#events').replaceChildren();
  if (ui.sub) {
    const expires = claims.exp ? ' (token expires ' + new Date(claims.exp * 1000).toLocaleTimeString() + ')' : '';
    $('#whoami').replaceChildren('signed in as ', h('strong', {}, ui.sub), expires);
  } else {
    $('#whoami').textContent = 'not signed in: paste a token' + (ui.devMode ? ' or mint a development token' : '');
  }
  $('#sign-out').hidden = !ui.token;
  $('#token').value = '';
  openStream();
  renderForm();
}

async function mintDevToken() {
  $('#signin-error').textContent = '';
  const response = await fetch('/console/dev-token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sub: $('#dev-sub').value.trim() }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    $('#signin-error').textContent = body.detail || ('HTTP ' + response.status);
    return;
  }
  setToken(body.token);
}

// ---- live pushes: GET /v1/events read with fetch() (EventSource cannot send a header) -------

function setStreamState(text) { $('#stream-state').textContent = 'events: ' + text; }

function openStream() {
  if (ui.stream) ui.stream.abort();
  ui.stream = null;
  if (!ui.token) { setStreamState('not connected'); return; }
  const controller = new AbortController();
  ui.stream = controller;
  (async () => {
    let delay = 1000;
    while (!controller.signal.aborted) {
      try {
        setStreamState('connecting…');
        const response = await fetch('/v1/events', { headers: authHeaders({ Accept: 'text/event-stream' }), signal: controller.signal });
        if (response.status === 401) {
          const body = await response.json().catch(() => ({}));
          setStreamState('refused: ' + (body.detail || 'unauthorized'));
          return;
        }
        if (!response.ok || !response.body) throw new Error('HTTP ' + response.status);
        setStreamState('connected');
        delay = 1000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n/g, '\n');
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            dispatchSse(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      setStreamState('reconnecting in ' + delay / 1000 + ' s');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  })();
}

function dispatchSse(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return;
  let payload;
  try { payload = JSON.parse(data.join('\n')); } catch (_) { return; }
  if (event === 'job') jobUpdate(payload, 'pushed over /v1/events');
  else if (event === 'user') userEvent(payload);
}

function userEvent(event) {
  const list = $('#events');
  list.prepend(h('li', {}, h('strong', {}, event.type || 'event'), ' ', new Date().toLocaleTimeString(), h('br'),
    h('code', {}, JSON.stringify(event))));
  while (list.children.length > 50) list.lastChild.remove();
}

// ---- jobs ----------------------------------------------------------------------------------

function jobUpdate(job, via) {
  if (!job || !job.job_id) return;
  const known = ui.jobs.get(job.job_id);
  if (known && FINAL.includes(known.status) && !FINAL.includes(job.status)) return;
  ui.jobs.set(job.job_id, job);
  ui.via.set(job.job_id, via);
  while (ui.jobs.size > 25) {
    const oldest = ui.jobs.keys().next().value;
    ui.jobs.delete(oldest);
    ui.via.delete(oldest);
  }
  if (ui.current === job.job_id) showJob(job);
  renderRecent();
}

function showJob(job) {
  ui.current = job.job_id;
  const via = ui.via.get(job.job_id);
  $('#job').hidden = false;
  $('#job-id').textContent = job.job_id;
  const status = $('#job-status');
  status.textContent = job.status;
  status.className = 'status ' + job.status;
  $('#job-via').textContent = via ? '(' + via + ')' : '';
  let text;
  if (job.status === 'succeeded') text = 'result:\n' + pretty(job.result);
  else if (job.error) {
    text = 'JSON-RPC error ' + job.error.code + ': ' + job.error.message;
    if (job.error.data !== undefined) text += '\ndata: ' + pretty(job.error.data);
  } else text = 'waiting for a worker to answer…';
  $('#job-result').textContent = text;
}

function showProblem(title, problem) {
  ui.current = null;
  $('#job').hidden = false;
  $('#job-id').textContent = '';
  const status = $('#job-status');
  status.textContent = title;
  status.className = 'status error';
  $('#job-via').textContent = '';
  $('#job-result').textContent = typeof problem === 'string' ? problem : pretty(problem);
}

function renderRecent() {
  const items = [...ui.jobs.values()].reverse().map((job) =>
    h('li', {},
      h('span', { class: 'status ' + job.status }, job.status), ' ',
      h('button', { type: 'button', onclick: () => showJob(job) }, job.method), ' ',
      h('code', { class: 'muted' }, job.job_id.slice(-12))));
  $('#recent').replaceChildren(...(items.length ? items : [h('li', { class: 'muted' }, ui.sub ? 'no jobs yet' : 'sign in to see your jobs')]));
}

// If no push came (stream down, or the job finished before it opened), long-poll the job.
async function followUp(jobId) {
  await new Promise((resolve) => setTimeout(resolve, 3000));
  for (let i = 0; i < 20; i++) {
    const known = ui.jobs.get(jobId);
    if (!known || FINAL.includes(known.status)) return;
    const response = await fetch('/v1/jobs/' + encodeURIComponent(jobId) + '?wait=20', { headers: authHeaders() }).catch(() => null);
    if (!response || !response.ok) return;
    jobUpdate(await response.json(), 'read with GET /v1/jobs/{id}?wait=20');
  }
}

// ---- the form, generated from the params schema -------------------------------------------

function typesOf(schema) {
  const t = schema.type;
  return Array.isArray(t) ? t : (t ? [t] : []);
}

function kindOf(schema) {
  if (Array.isArray(schema.enum)) return 'enum';
  const types = typesOf(schema).filter((t) => t !== 'null');
  if (types.length === 1 && ['string', 'integer', 'number', 'boolean'].includes(types[0])) return types[0];
  return 'json';
}

function currentMethod() {
  return ui.routes.find((route) => route.method === $('#method').value);
}

function renderForm() {
  const route = currentMethod();
  const fields = $('#fields');
  fields.replaceChildren();
  clearErrors();
  if (!route || !ui.openapi) { $('#method-summary').textContent = ''; return; }
  $('#method-summary').textContent = route.summary;
  const schema = paramsSchema(route.method);
  const properties = schema.properties || {};
  const required = new Set(schema.required || []);
  const claimer = route.claimer ? route.claimer.replace(/^\//, '') : null;
  // Required properties first, in the schema's order; then the others.
  const names = [...new Set([...(schema.required || []).filter((n) => n in properties), ...Object.keys(properties)])];
  if (!names.length) {
    fields.append(field('__params', { description: 'The whole params object, as JSON.' }, true, 'json', '{}'));
  }
  for (const name of names) {
    const prop = deref(properties[name]);
    let initial = '';
    if (name === claimer && ui.sub) initial = ui.sub;
    fields.append(field(name, prop, required.has(name), kindOf(prop), initial));
  }
  if (!route.bound && route.bound !== null) {
    $('#form-error').textContent = 'No worker is bound for ' + route.method + ' (queue ' + route.queue + '): a submit answers 503 until one starts.';
  }
  $('#submit').disabled = !ui.token;
  $('#submit').title = ui.token ? '' : 'sign in first';
  updateCurl();
}

function field(name, prop, isRequired, kind, initial) {
  const id = 'f-' + name;
  const types = typesOf(prop).join(' | ') || (kind === 'json' ? 'any JSON' : '');
  const label = h('label', { for: id }, name === '__params' ? 'params' : name,
    isRequired ? h('span', { class: 'req', title: 'required' }, ' *') : null,
    h('span', { class: 'type' }, [types, prop.format, prop.contentEncoding].filter(Boolean).join(', ')));
  let input;
  if (kind === 'enum') {
    input = h('select', { id, name },
      isRequired ? null : h('option', { value: '' }, '(leave out)'),
      prop.enum.map((value) => h('option', { value: JSON.stringify(value) }, String(value))));
  } else if (kind === 'boolean') {
    input = h('select', { id, name },
      isRequired ? null : h('option', { value: '' }, '(leave out)'),
      h('option', { value: 'true' }, 'true'), h('option', { value: 'false' }, 'false'));
  } else if (kind === 'json' || (kind === 'string' && (prop.contentEncoding || !prop.maxLength || prop.maxLength > 200))) {
    input = h('textarea', { id, name, rows: kind === 'json' ? 3 : 2, spellcheck: 'false' });
    input.value = initial;
  } else {
    input = h('input', {
      id, name, autocomplete: 'off',
      inputmode: kind === 'integer' ? 'numeric' : (kind === 'number' ? 'decimal' : null),
      placeholder: prop.default !== undefined ? 'default ' + JSON.stringify(prop.default) : (prop.format || ''),
    });
    input.value = initial;
  }
  input.dataset.kind = kind;
  input.dataset.required = isRequired ? '1' : '';
  input.addEventListener('input', () => { setError(name, ''); updateCurl(); });
  input.addEventListener('change', updateCurl);
  const wrap = h('div', { class: 'field', 'data-field': name }, label, input);
  if (prop.contentEncoding === 'base64') {
    wrap.append(h('input', {
      type: 'file', 'aria-label': name + ' from a file',
      onchange: (event) => {
        const file = event.target.files[0];
        if (!file) return;
        const reader = new FileReader();
        reader.onload = () => { input.value = String(reader.result).replace(/^data:[^,]*,/, ''); updateCurl(); };
        reader.readAsDataURL(file);
      },
    }));
  }
  if (prop.description) wrap.append(h('p', { class: 'help' }, prop.description));
  wrap.append(h('div', { class: 'field-error', id: 'err-' + name, role: 'alert' }));
  return wrap;
}

// Read the form into params. Empty optional fields are left out; text that is not a number
// is sent as typed, so the gateway's own validation explains what is wrong.
function collect(report) {
  const params = {};
  let ok = true;
  for (const input of $('#fields').querySelectorAll('input[name], select[name], textarea[name]')) {
    const name = input.name;
    const raw = input.value;
    if (raw.trim() === '' && input.dataset.kind !== 'string') continue;
    if (raw === '' && !input.dataset.required) continue;
    let value = raw;
    switch (input.dataset.kind) {
      case 'enum': value = JSON.parse(raw); break;
      case 'boolean': value = raw === 'true'; break;
      case 'integer': case 'number': {
        const n = Number(raw.trim());
        value = raw.trim() !== '' && Number.isFinite(n) ? n : raw;
        break;
      }
      case 'json':
        try { value = JSON.parse(raw); } catch (error) {
          if (report) setError(name, 'not valid JSON: ' + error.message);
          ok = false;
          continue;
        }
        break;
      default: break;
    }
    if (name === '__params') return { ok, params: value };
    params[name] = value;
  }
  return { ok, params };
}

function setError(name, message) {
  const target = $('#err-' + CSS.escape(name)) || $('#form-error');
  target.textContent = message;
  const input = document.getElementById('f-' + name);
  if (input) input.classList.toggle('invalid', !!message);
}

function clearErrors() {
  for (const el of document.querySelectorAll('.field-error')) { if (el.id !== 'signin-error') el.textContent = ''; }
  for (const el of document.querySelectorAll('.invalid')) el.classList.remove('invalid');
}

function updateCurl() {
  const route = currentMethod();
  if (!route) return;
  const { params } = collect(false);
  const body = JSON.stringify(params).replace(/'/g, "'\\''");
  $('#curl').textContent = 'curl -s -X POST ' + location.origin + route.submit + " \\\n  -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n  -d '" + body + "'";
}

async function submitJob(event) {
  event.preventDefault();
  clearErrors();
  const route = currentMethod();
  if (!route) return;
  const { ok, params } = collect(true);
  if (!ok) return;
  const button = $('#submit');
  button.disabled = true;
  try {
    const response = await fetch(route.submit, {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(params),
    });
    const body = await response.json().catch(() => null);
    if (response.status === 202 || response.status === 200) {
      ui.current = body.job_id;
      jobUpdate(body, response.status === 202 ? '202 Accepted, waiting for the push' : 'answered 200');
      const job = ui.jobs.get(body.job_id) || body;
      showJob(job);
      if (!FINAL.includes(job.status)) followUp(body.job_id);
    } else if (response.status === 422 && body && Array.isArray(body.errors)) {
      for (const error of body.errors) {
        let name = (error.pointer || '').split('/')[1];
        if (!name) {
          const missing = /"([^"]+)" is a required property/.exec(error.message);
          name = missing ? missing[1] : '';
        }
        if (name) name = name.replace(/~1/g, '/').replace(/~0/g, '~');
        const known = name && document.getElementById('f-' + name);
        const target = known ? name : '__form';
        const message = known ? error.message : (error.pointer ? error.pointer + ': ' : '') + error.message;
        const el = target === '__form' ? $('#form-error') : $('#err-' + CSS.escape(name));
        el.textContent = el.textContent ? el.textContent + '; ' + message : message;
        if (known) document.getElementById('f-' + name).classList.add('invalid');
      }
      showProblem('422 invalid params', body.detail || 'see the fields above');
    } else {
      showProblem(response.status + ' ' + ((body && body.title) || response.statusText), body || '');
    }
  } catch (error) {
    showProblem('network error', String(error));
  } finally {
    button.disabled = !ui.token;
  }
}

// ---- routes and metrics --------------------------------------------------------------------

function bindingBadge(route) {
  if (route.bound === true) return h('span', { class: 'badge bound', title: route.queue }, route.consumers + (route.consumers === 1 ? ' consumer' : ' consumers'));
  if (route.bound === false) return h('span', { class: 'badge unbound', title: route.queue_exists ? route.queue + ' has no consumer' : 'no queue ' + route.queue }, 'unroutable');
  return h('span', { class: 'badge unknown', title: 'the broker could not be asked' }, 'unknown');
}

async function loadRoutes() {
  const response = await fetch('/console/api/routes').catch(() => null);
  if (!response || !response.ok) return;
  const body = await response.json();
  const before = ui.routes.map((r) => r.method + ':' + r.bound).join(',');
  const fresh = body.methods.map((r) => r.method).join(',') !== ui.routes.map((r) => r.method).join(',');
  ui.routes = body.methods;
  if (ui.devMode !== body.dev_mode) {
    ui.devMode = body.dev_mode;
    $('#dev').hidden = !ui.devMode;
    if (!ui.sub) setToken('');
  }
  if (fresh || !ui.openapi) {
    ui.openapi = await (await fetch('/openapi.json')).json();
    const select = $('#method');
    const chosen = select.value || location.hash.slice(1) || 'send_message';
    select.replaceChildren(...ui.routes.map((r) => h('option', { value: r.method }, r.method)));
    if (ui.routes.some((r) => r.method === chosen)) select.value = chosen;
    renderForm();
  } else if (before !== ui.routes.map((r) => r.method + ':' + r.bound).join(',')) {
    renderForm();
  }
  const unbound = ui.routes.filter((r) => r.bound === false).length;
  $('#routes-summary').textContent = ui.routes.length + ' methods, ' + (unbound ? unbound + ' unroutable (no worker bound)' : 'all bound');
  $('#routes tbody').replaceChildren(...ui.routes.map((r) => h('tr', {
    'data-method': r.method,
    'data-bound': String(r.bound),
    class: r.bound === false ? 'unbound' : '',
    onclick: () => { $('#method').value = r.method; renderForm(); $('#try-section').scrollIntoView({ behavior: 'smooth' }); },
  },
  h('td', {}, h('code', {}, r.method), bindingBadge(r)),
  h('td', {}, r.worker),
  h('td', {}, r.http ? [h('span', { class: 'verb' }, r.http.verb), h('code', {}, r.http.path)] : [h('span', { class: 'verb' }, 'POST'), h('code', {}, r.submit)]),
  h('td', { class: 'muted' }, h('div', { class: 'clamp', title: r.summary }, r.summary)))));
}

function parseMetrics(text) {
  const rows = new Map();
  const row = (method) => {
    if (!rows.has(method)) rows.set(method, { accepted: 0, succeeded: 0, failed: 0, expired: 0, unroutable: 0 });
    return rows.get(method);
  };
  for (const line of text.split('\n')) {
    const m = /^intercomm_(jobs_accepted|jobs_completed|jobs_unroutable)(?:_total)?\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    const value = Number(m[3]);
    if (!labels.method) continue;
    const r = row(labels.method);
    if (m[1] === 'jobs_accepted') r.accepted += value;
    else if (m[1] === 'jobs_unroutable') r.unroutable += value;
    else if (labels.outcome in r) r[labels.outcome] += value;
  }
  return rows;
}

async function loadMetrics() {
  const response = await fetch('/metrics').catch(() => null);
  if (!response || !response.ok) return;
  const rows = parseMetrics(await response.text());
  const now = performance.now();
  const accepted = [...rows.values()].reduce((sum, r) => sum + r.accepted, 0);
  const m = ui.metrics;
  if (m.at) {
    const rate = Math.max(0, (accepted - m.accepted) / ((now - m.at) / 1000));
    m.samples.push(rate);
    if (m.samples.length > 30) m.samples.shift();
    $('#rate').textContent = rate.toFixed(1);
    const top = Math.max(1, ...m.samples);
    $('#spark').replaceChildren(...m.samples.map((s) => h('i', { style: 'height:' + Math.round((s / top) * 100) + '%' })));
  }
  m.at = now;
  m.accepted = accepted;
  const sorted = [...rows.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  $('#metrics tbody').replaceChildren(...(sorted.length ? sorted.map(([method, r]) => h('tr', {},
    h('td', {}, h('code', {}, method)),
    ...['accepted', 'succeeded', 'failed', 'expired', 'unroutable'].map((k) => h('td', { class: 'num' }, r[k]))))
    : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'no jobs yet'))]));
}

// ---- start -------------------------------------------------------------------------------------

function start() {
  $('#use-token').addEventListener('click', () => setToken($('#token').value.trim()));
  $('#token').addEventListener('keydown', (e) => { if (e.key === 'Enter') setToken($('#token').value.trim()); });
  $('#sign-out').addEventListener('click', () => setToken(''));
  $('#dev-mint').addEventListener('click', mintDevToken);
  $('#method').addEventListener('change', renderForm);
  $('#job-form').addEventListener('submit', submitJob);
  setToken(ui.token);
  loadRoutes();
  loadMetrics();
  setInterval(loadRoutes, 5000);
  setInterval(loadMetrics, 2000);
}

document.addEventListener('DOMContentLoaded', start);
