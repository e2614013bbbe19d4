// The monitor page's chart: an up/down band over (up to) the last hour drawn from the
// status-change events, and the response time of the checks seen while the page is open.

import { h, svg } from './dom.js';

const WIDTH = 640;
const BAND_HEIGHT = 18;
const LINE_HEIGHT = 70;
const WINDOW_MS = 60 * 60 * 1000;
const COLOURS = { healthy: '#1f9d55', failed: '#d64545', unknown: '#a0a7b4' };

const MIN_WINDOW_MS = 60 * 1000;

function statusChanges(events) {
  return events
    .filter((e) => e.kind === 'status_change' && e.at)
    .map((e) => ({ at: Date.parse(e.at), status: e.status, prev: e.prev_status }))
    .filter((e) => !Number.isNaN(e.at))
    .sort((a, b) => a.at - b.at);
}

// The band's start: an hour ago, or a little before the oldest change when that is more
// recent (so that a young monitor's history is not a sliver), at least a minute back.
function windowStart(changes, now) {
  if (!changes.length) return now - WINDOW_MS;
  const oldest = changes[0].at;
  const span = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, (now - oldest) * 1.1));
  return now - span;
}

// Status segments over [start, now] from the changes, given the current status.
function segments(changes, currentStatus, start, now) {
  const out = [];
  const before = changes.filter((c) => c.at <= start).pop();
  const inside = changes.filter((c) => c.at > start);
  let status = before ? before.status : inside.length ? inside[0].prev : currentStatus;
  let from = start;
  for (const change of inside) {
    out.push({ from, to: change.at, status: status || 'unknown' });
    from = change.at;
    status = change.status;
  }
  out.push({ from, to: now, status: currentStatus || status || 'unknown' });
  return out;
}

function spanLabel(ms) {
  const minutes = Math.round(ms / 60000);
  return minutes >= 1 ? minutes + ' min ago' : Math.round(ms / 1000) + ' s ago';
}

export function drawChart(events, currentStatus, samples) {
  const now = Date.now();
  const changes = statusChanges(events);
  const start = windowStart(changes, now);
  const x = (t) => ((t - start) / (now - start)) * WIDTH;
  const rects = segments(changes, currentStatus, start, now).map((s) => svg('rect', {
    x: x(s.from).toFixed(1), y: 0, width: Math.max(0.5, x(s.to) - x(s.from)).toFixed(1),
    height: BAND_HEIGHT, fill: COLOURS[s.status] || COLOURS.unknown, 'data-status': s.status,
  }, svg('title', {}, s.status + ' from ' + new Date(s.from).toLocaleTimeString())));
  const band = svg('svg', { viewBox: '0 0 ' + WIDTH + ' ' + BAND_HEIGHT, class: 'band',
    preserveAspectRatio: 'none', role: 'img', 'aria-label': 'status over time' },
  rects);
  const values = samples.map((s) => s.ms);
  const max = Math.max(1, ...values);
  const step = samples.length > 1 ? WIDTH / (samples.length - 1) : 0;
  const points = samples.map((s, i) =>
    (i * step).toFixed(1) + ',' + (LINE_HEIGHT - 4 - (s.ms / max) * (LINE_HEIGHT - 8)).toFixed(1));
  const line = svg('svg', { viewBox: '0 0 ' + WIDTH + ' ' + LINE_HEIGHT, class: 'line',
    preserveAspectRatio: 'none', role: 'img', 'aria-label': 'response time' },
  svg('line', { x1: 0, x2: WIDTH, y1: LINE_HEIGHT - 4, y2: LINE_HEIGHT - 4, class: 'axis' }),
  samples.length > 1 ? svg('polyline', { points: points.join(' '), class: 'series' }) : null,
  samples.map((s, i) => svg('circle', { cx: (i * step).toFixed(1),
    cy: (LINE_HEIGHT - 4 - (s.ms / max) * (LINE_HEIGHT - 8)).toFixed(1), r: 2.5,
    class: 'dot' }, svg('title', {}, s.ms + ' ms at ' + new Date(s.at).toLocaleTimeString()))));
  const latest = samples.length ? samples[samples.length - 1].ms + ' ms' : 'no sample yet';
  return h('div', { class: 'chart', id: 'chart' },
    h('div', { class: 'chart-title' }, 'Status',
      h('span', { class: 'muted' }, ' (from the history)')),
    band,
    h('div', { class: 'axis-labels muted' }, h('span', {}, spanLabel(now - start)), h('span', {}, 'now')),
    h('div', { class: 'chart-title' }, 'Response time: ', h('strong', {}, latest),
      h('span', { class: 'muted' }, ' · max ' + max + ' ms · ' + samples.length +
        ' checks seen while this page is open')),
    line);
}
