// The monitor board: counts, filters (status, tag, name search), one page of monitors from
// the server (limit/cursor, so the cost does not grow with the number of monitors), refreshed
// every two seconds.

import { api, withQuery } from './api.js';
import { badge, clear, h, poll, when } from './dom.js';

const PAGE_SIZE = 50;
const REFRESH_MS = 2000;

export function render(main) {
  const filters = { status: '', tag: '', q: '' };
  // Cursors of the pages seen so far; the last one is the page on screen.
  let cursors = [null];
  let nextCursor = null;

  const count = (key, label) => h('button', { class: 'count c-' + key, type: 'button',
    id: 'count-' + key, onclick: () => setStatus(key === 'total' ? '' : key) },
  h('span', { class: 'n' }, '…'), h('span', { class: 'label' }, label));
  const counts = h('div', { class: 'counts' }, count('total', 'monitors'),
    count('healthy', 'healthy'), count('failed', 'failed'), count('unknown', 'unknown'));

  const search = h('input', { type: 'search', id: 'search', placeholder: 'Search by name',
    'aria-label': 'Search by name' });
  const status = h('select', { id: 'status-filter', 'aria-label': 'Status' },
    h('option', { value: '' }, 'Any status'), h('option', { value: 'healthy' }, 'Healthy'),
    h('option', { value: 'failed' }, 'Failed'), h('option', { value: 'unknown' }, 'Unknown'));
  const tag = h('input', { type: 'text', id: 'tag-filter', placeholder: 'Tag',
    'aria-label': 'Tag' });
  const toolbar = h('div', { class: 'toolbar' }, search, status, tag,
    h('span', { class: 'spacer' }),
    h('a', { class: 'btn primary', href: '#/monitors/new', id: 'new-monitor' }, 'New monitor'));

  const body = h('tbody', { id: 'board-rows' });
  const table = h('table', { class: 'grid', id: 'board' },
    h('thead', {}, h('tr', {}, ['Name', 'Status', 'Streak', 'Last check', 'Last reason',
      'Response', 'Owner', 'Tags'].map((title) => h('th', {}, title)))),
    body);
  const error = h('p', { class: 'banner error', id: 'board-error', hidden: true });
  const pageLabel = h('span', { class: 'muted' });
  const prev = h('button', { class: 'btn small', type: 'button', id: 'prev-page',
    onclick: () => {
      cursors.pop();
      refresh();
    } }, '← Previous');
  const next = h('button', { class: 'btn small', type: 'button', id: 'next-page',
    onclick: () => {
      if (!nextCursor) return;
      cursors.push(nextCursor);
      refresh();
    } }, 'Next →');
  const updated = h('span', { class: 'muted', id: 'board-updated' });
  main.append(h('h1', {}, 'Monitors'), counts, toolbar, error,
    h('div', { class: 'panel flush' }, table),
    h('div', { class: 'pager' }, prev, pageLabel, next, h('span', { class: 'spacer' }), updated));

  let generation = 0;
  async function refresh() {
    const mine = ++generation;
    const cursor = cursors[cursors.length - 1];
    const path = withQuery('/api/v1/monitors', { limit: PAGE_SIZE, cursor, ...filters });
    try {
      const [summary, page] = await Promise.all([
        api('GET', '/api/v1/summary'), api('GET', path)]);
      if (mine !== generation) return;
      error.hidden = true;
      for (const key of ['total', 'healthy', 'failed', 'unknown']) {
        document.querySelector('#count-' + key + ' .n').textContent =
          String(summary.monitors[key]);
      }
      nextCursor = page.next_cursor;
      drawRows(page.items);
      prev.disabled = cursors.length <= 1;
      next.disabled = !nextCursor;
      pageLabel.textContent = 'Page ' + cursors.length;
      updated.textContent = 'Updated ' + new Date().toLocaleTimeString();
    } catch (failure) {
      if (mine !== generation) return;
      error.textContent = 'Could not load the monitors: ' + failure.message;
      error.hidden = false;
      if (failure.field) cursors = [null];
    }
  }

  function drawRows(items) {
    clear(body);
    if (items.length === 0) {
      const filtered = filters.status || filters.tag || filters.q;
      body.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' },
        filtered ? 'No monitor matches these filters.' : 'No monitors yet. ',
        filtered ? null : h('a', { href: '#/monitors/new' }, 'Create the first one'))));
      return;
    }
    for (const monitor of items) {
      const state = monitor.state || {};
      const href = '#/monitors/' + encodeURIComponent(monitor.id);
      body.append(h('tr', { 'data-id': monitor.id, 'data-status': state.status },
        h('td', { class: 'name' }, h('a', { href }, monitor.name),
          monitor.enabled === false ? h('span', { class: 'tag muted' }, 'disabled') : null),
        h('td', {}, badge(state.status)),
        h('td', { class: 'num' }, String(state.streak ?? 0)),
        h('td', {}, when(state.last_check_at)),
        h('td', { class: 'reason', title: state.last_reason || undefined },
          state.last_reason || '—'),
        h('td', { class: 'num' }, state.last_duration_ms == null ? '—'
          : state.last_duration_ms + ' ms'),
        h('td', { class: 'mono' }, state.owner || '—'),
        h('td', {}, (monitor.tags || []).map((t) => h('span', { class: 'tag' }, t)))));
    }
  }

  function restart() {
    cursors = [null];
    refresh();
  }

  function setStatus(value) {
    status.value = value;
    filters.status = value;
    restart();
  }

  let typing = null;
  const debounced = (apply) => () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      apply();
      restart();
    }, 250);
  };
  search.addEventListener('input', debounced(() => {
    filters.q = search.value.trim();
  }));
  tag.addEventListener('input', debounced(() => {
    filters.tag = tag.value.trim();
  }));
  status.addEventListener('change', () => setStatus(status.value));

  const stop = poll(refresh, REFRESH_MS);
  return () => {
    stop();
    clearTimeout(typing);
  };
}
