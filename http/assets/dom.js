// DOM helpers. Every string from the API goes in as text (textContent or attribute values set
// one by one), never as HTML.

export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attrs);
  append(element, children);
  return element;
}

export function svg(tag, attrs, ...children) {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttributes(element, attrs);
  append(element, children);
  return element;
}

function setAttributes(element, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') element.setAttribute('class', value);
    else if (key === 'text') element.textContent = String(value);
    else if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else if (key === 'value') element.value = value;
    else if (key === 'checked') element.checked = Boolean(value);
    else element.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

export function clear(element) {
  element.replaceChildren();
}

const STATUSES = new Set(['healthy', 'failed', 'unknown']);

// A status badge (coloured by status, labelled `label` or the status); an unexpected value
// shows in the unknown colour.
export function badge(status, label) {
  const known = STATUSES.has(status) ? status : 'unknown';
  return h('span', { class: 'badge s-' + known }, String(label ?? status ?? 'unknown'));
}

export function ago(iso) {
  if (!iso) return '—';
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return String(iso);
  const secs = Math.round((Date.now() - then) / 1000);
  if (secs < 0) return 'just now';
  if (secs < 60) return secs + ' s ago';
  if (secs < 3600) return Math.floor(secs / 60) + ' min ago';
  if (secs < 86400) return Math.floor(secs / 3600) + ' h ago';
  return Math.floor(secs / 86400) + ' d ago';
}

// A time element showing how long ago, with the full timestamp on hover.
export function when(iso) {
  return h('time', { datetime: iso || undefined, title: iso || undefined }, ago(iso));
}

export function flash(message, kind = 'info') {
  const area = document.getElementById('flash');
  const note = h('div', { class: 'flash ' + kind }, message);
  area.append(note);
  setTimeout(() => note.remove(), 6000);
}

// A confirmation dialog drawn in the page; resolves true when confirmed.
export function confirmAction(title, message, confirmLabel, danger = false) {
  return new Promise((resolve) => {
    const close = (answer) => {
      backdrop.remove();
      document.removeEventListener('keydown', onKey);
      resolve(answer);
    };
    const onKey = (event) => {
      if (event.key === 'Escape') close(false);
    };
    const ok = h('button', { class: danger ? 'btn danger' : 'btn primary', id: 'confirm-ok',
      type: 'button', onclick: () => close(true) }, confirmLabel);
    const backdrop = h('div', { class: 'backdrop' },
      h('div', { class: 'modal', role: 'dialog', 'aria-modal': 'true', 'aria-label': title },
        h('h2', {}, title),
        h('p', {}, message),
        h('div', { class: 'actions' },
          h('button', { class: 'btn', id: 'confirm-cancel', type: 'button',
            onclick: () => close(false) }, 'Cancel'),
          ok)));
    document.addEventListener('keydown', onKey);
    document.body.append(backdrop);
    ok.focus();
  });
}

// Runs `tick` now and every `ms` until the returned stop function is called; a slow tick is
// never overlapped by the next one.
export function poll(tick, ms) {
  let stopped = false;
  let timer = null;
  const run = async () => {
    if (stopped) return;
    try {
      await tick();
    } catch (error) {
      console.warn('refresh failed', error);
    } finally {
      if (!stopped) timer = setTimeout(run, ms);
    }
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
