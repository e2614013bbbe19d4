// One monitor: its definition and state, the actions (run now, mark failed or healthy,
// delete, each confirmed), its reactions, a chart, and the timeline of its history (newest
// first, paged), refreshed every two seconds.

import { api, withQuery } from './api.js';
import { badge, clear, confirmAction, flash, h, poll, when } from './dom.js';
import { drawChart } from './chart.js';

const REFRESH_MS = 2000;
const EVENTS_PAGE = 50;
const MAX_SAMPLES = 120;

function definitionRows(monitor) {
  const rows = [['Check type', monitor.check?.type]];
  for (const [key, value] of Object.entries(monitor.check || {})) {
    if (key !== 'type') rows.push(['check.' + key, typeof value === 'string' ? value
      : JSON.stringify(value)]);
  }
  rows.push(['Interval', monitor.interval_secs == null ? 'none (results arrive by webhook)'
    : monitor.interval_secs + ' s']);
  rows.push(['Enabled', monitor.enabled ? 'yes' : 'no']);
  rows.push(['Tags', (monitor.tags || []).join(', ') || '—']);
  if (monitor.webhook_url) rows.push(['Webhook URL', monitor.webhook_url]);
  rows.push(['Id', monitor.id]);
  return rows;
}

function list(rows) {
  return h('dl', { class: 'kv' }, rows.map(([key, value]) => [h('dt', {}, key),
    h('dd', {}, value instanceof Node ? value : String(value ?? '—'))]));
}

function eventItem(event, reactionNames) {
  const head = [];
  let text;
  if (event.kind === 'status_change') {
    head.push(badge(event.status));
    text = [h('strong', {}, (event.prev_status || 'unknown') + ' → ' + event.status),
      ' · ' + (event.method || 'automatic') + ' · streak ' + (event.streak ?? '—'),
      event.reason ? ' · ' + event.reason : ''];
  } else if (event.kind === 'reaction') {
    const outcome = String(event.outcome || '');
    head.push(h('span', { class: 'badge o-' + (['executed', 'failed', 'skipped']
      .includes(outcome) ? outcome : 'skipped') }, outcome || 'reaction'));
    text = [h('strong', {}, 'reaction ' + (reactionNames.get(event.reaction_id)
      || event.reaction_id || '')), event.detail ? ' · ' + event.detail : '',
    event.episode != null ? ' · episode ' + event.episode : ''];
  } else {
    head.push(h('span', { class: 'badge s-unknown' }, String(event.kind)));
    text = [event.reason || event.detail || ''];
  }
  return h('li', { class: 'event k-' + String(event.kind).replace(/[^a-z_]/g, ''),
    'data-kind': event.kind },
  h('span', { class: 'at' }, when(event.at)), head, h('span', { class: 'what' }, text),
  event.node ? h('span', { class: 'muted mono' }, event.node) : null);
}

export function render(main, id) {
  const path = '/api/v1/monitors/' + encodeURIComponent(id);
  const title = h('h1', { id: 'monitor-name' }, 'Monitor');
  const status = h('span', { id: 'monitor-status' });
  const error = h('p', { class: 'banner error', hidden: true, id: 'monitor-error' });
  const state = h('div', { class: 'panel', id: 'monitor-state' });
  const definition = h('div', { class: 'panel', id: 'monitor-definition' });
  const reactions = h('div', { class: 'panel', id: 'monitor-reactions' });
  const chart = h('div', { class: 'panel' });
  const timeline = h('ol', { class: 'timeline', id: 'timeline' });
  const older = h('button', { class: 'btn small', type: 'button', id: 'older', hidden: true },
    'Load older');
  const button = (label, idName, onclick, kind = '') => h('button', { class: 'btn ' + kind,
    type: 'button', id: idName, onclick }, label);
  const actions = h('div', { class: 'actions' },
    button('Run now', 'run-now', () => act('run', 'Run the check now?',
      'The check runs once on the monitor\'s node; its result counts like any other.', 'Run')),
    button('Mark failed', 'mark-failed', () => act('fail', 'Mark this monitor failed?',
      'A manual failure holds until a manual heal, and reactions run as for any failure.',
      'Mark failed', true), 'danger-outline'),
    button('Mark healthy', 'mark-healthy', () => act('heal', 'Mark this monitor healthy?',
      'This clears a manual failure; recovery reactions run as for any result.',
      'Mark healthy')),
    h('a', { class: 'btn', href: '#/monitors/' + encodeURIComponent(id) + '/edit', id: 'edit' },
      'Edit'),
    button('Delete', 'delete', remove, 'danger'));
  main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Monitors'), ' / '),
    h('div', { class: 'title-row' }, title, status, h('span', { class: 'spacer' }), actions),
    error,
    h('div', { class: 'columns' },
      h('div', {}, state, chart, h('div', { class: 'panel' }, h('h2', {}, 'Timeline'),
        timeline, older)),
      h('div', {}, definition, reactions)));

  let dead = false;
  let monitor = null;
  let head = [];
  let tail = [];
  let tailCursor = null;
  let tailLoaded = false;
  const samples = [];
  let lastSampleAt = null;
  const reactionNames = new Map();

  async function act(verb, question, detail, label, danger = false) {
    if (!(await confirmAction(question, detail, label, danger))) return;
    try {
      const answer = await api('POST', path + '/' + verb, verb === 'run' ? undefined : {});
      flash(verb === 'run' ? 'Check ran: ' + answer.outcome + (answer.reason ? ' (' +
        answer.reason + ')' : '') : 'Monitor marked ' + (verb === 'fail' ? 'failed' : 'healthy')
        + '.', 'ok');
      refresh();
    } catch (failure) {
      flash('Could not ' + verb + ': ' + failure.message, 'error');
    }
  }

  async function remove() {
    const ok = await confirmAction('Delete this monitor?',
      'It stops running and its history is deleted. This cannot be undone.', 'Delete', true);
    if (!ok) return;
    try {
      await api('DELETE', path);
      flash('Monitor deleted.', 'ok');
      location.hash = '#/';
    } catch (failure) {
      flash('Could not delete: ' + failure.message, 'error');
    }
  }

  async function loadReactions(ids) {
    const found = await Promise.all(ids.map((rid) =>
      api('GET', '/api/v1/reactions/' + encodeURIComponent(rid)).catch(() => null)));
    clear(reactions);
    reactions.append(h('h2', {}, 'Reactions'));
    if (!ids.length) reactions.append(h('p', { class: 'muted' }, 'None attached. ',
      h('a', { href: '#/monitors/' + encodeURIComponent(id) + '/edit' }, 'Attach one')));
    const items = h('ul', { class: 'plain' });
    found.forEach((reaction, i) => {
      if (!reaction) {
        items.append(h('li', { class: 'muted' }, ids[i] + ' (missing)'));
        return;
      }
      reactionNames.set(reaction.id, reaction.name);
      items.append(h('li', {}, h('a', { href: '#/reactions/' + encodeURIComponent(reaction.id)
        + '/edit' }, reaction.name), ' ', h('span', { class: 'muted' }, reaction.action?.type +
        ' · on ' + reaction.call_on + ' · trigger ' + reaction.trigger), ' · last run ',
      when(reaction.last_run_at)));
    });
    reactions.append(items);
  }

  function drawTimeline() {
    clear(timeline);
    const seen = new Set();
    for (const event of [...head, ...tail]) {
      if (seen.has(event.id)) continue;
      seen.add(event.id);
      timeline.append(eventItem(event, reactionNames));
    }
    if (!seen.size) timeline.append(h('li', { class: 'muted' }, 'No history yet.'));
    older.hidden = !(tailLoaded ? tailCursor : headCursor);
  }

  let headCursor = null;
  async function refresh() {
    try {
      const [current, events] = await Promise.all([api('GET', path),
        api('GET', withQuery(path + '/events', { limit: EVENTS_PAGE }))]);
      if (dead) return;
      error.hidden = true;
      const first = monitor === null;
      const reactionsChanged = !monitor ||
        JSON.stringify(monitor.reactions) !== JSON.stringify(current.reactions);
      monitor = current;
      head = events.items;
      headCursor = events.next_cursor;
      const s = current.state || {};
      title.textContent = current.name;
      document.title = current.name + ' · CloudRoutes';
      clear(status);
      status.append(badge(s.status));
      if (s.last_duration_ms != null && s.last_check_at && s.last_check_at !== lastSampleAt) {
        lastSampleAt = s.last_check_at;
        samples.push({ at: Date.parse(s.last_check_at), ms: s.last_duration_ms });
        if (samples.length > MAX_SAMPLES) samples.shift();
      }
      clear(state);
      state.append(h('h2', {}, 'State'), list([
        ['Status', badge(s.status)], ['Streak', s.streak], ['Episode', s.episode],
        ['Manual hold', s.manual_hold ? 'yes (until a manual heal)' : 'no'],
        ['Last check', when(s.last_check_at)], ['Last change', when(s.last_change_at)],
        ['Last reason', s.last_reason], ['Response time', s.last_duration_ms == null ? '—'
          : s.last_duration_ms + ' ms'], ['Owner node', s.owner]]));
      clear(definition);
      definition.append(h('h2', {}, 'Definition'), list(definitionRows(current)));
      clear(chart);
      chart.append(drawChart([...head, ...tail], s.status, samples));
      if (first || reactionsChanged) await loadReactions(current.reactions || []);
      drawTimeline();
    } catch (failure) {
      if (dead) return;
      error.textContent = failure.status === 404 ? 'This monitor does not exist (any more).'
        : 'Could not refresh: ' + failure.message;
      error.hidden = false;
    }
  }

  older.addEventListener('click', async () => {
    const cursor = tailLoaded ? tailCursor : headCursor;
    if (!cursor) return;
    try {
      const page = await api('GET', withQuery(path + '/events',
        { limit: EVENTS_PAGE, cursor }));
      tail = tail.concat(page.items);
      tailCursor = page.next_cursor;
      tailLoaded = true;
      drawTimeline();
    } catch (failure) {
      flash('Could not load older events: ' + failure.message, 'error');
    }
  });

  const stop = poll(refresh, REFRESH_MS);
  return () => {
    dead = true;
    stop();
  };
}
