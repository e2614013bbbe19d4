// The cluster: every node with its liveness, zone, partitions and monitors, and a drain button
// (confirmed). A single node shows itself.

import { api } from './api.js';
import { badge, clear, confirmAction, flash, h, poll, when } from './dom.js';

export function render(main) {
  const heading = h('p', { class: 'muted', id: 'cluster-mode' });
  const body = h('tbody', { id: 'cluster-rows' });
  const error = h('p', { class: 'banner error', hidden: true });
  main.append(h('h1', {}, 'Cluster'), heading, error,
    h('div', { class: 'panel flush' }, h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, ['Node', 'Alive', 'Zone', 'Partitions', 'Monitors',
        'HTTP address', 'Last heartbeat', ''].map((t) => h('th', {}, t)))), body)));
  let dead = false;

  async function drain(node) {
    const ok = await confirmAction('Drain node ' + node.id + '?',
      'Its partitions move to the other nodes until it restarts.', 'Drain', true);
    if (!ok) return;
    try {
      await api('POST', '/api/v1/cluster/nodes/' + encodeURIComponent(node.id) + '/drain');
      flash('Draining ' + node.id + '.', 'ok');
      refresh();
    } catch (failure) {
      flash('Could not drain: ' + failure.message, 'error');
    }
  }

  async function refresh() {
    try {
      const view = await api('GET', '/api/v1/cluster');
      if (dead) return;
      error.hidden = true;
      heading.textContent = (view.mode === 'single' ? 'Single node (embedded store)'
        : 'Cluster of ' + view.nodes.length + ' nodes, ' + view.partitions + ' partitions') +
        ' · answered by ' + view.node_id;
      clear(body);
      const single = view.mode === 'single';
      for (const node of view.nodes) {
        body.append(h('tr', { 'data-id': node.id },
          h('td', { class: 'mono' }, node.id, node.id === view.node_id
            ? h('span', { class: 'tag' }, 'this node') : null,
          node.draining ? h('span', { class: 'tag warn' }, 'draining') : null),
          h('td', {}, badge(node.alive ? 'healthy' : 'failed', node.alive ? 'alive' : 'down')),
          h('td', {}, node.zone || '—'),
          h('td', { class: 'num' }, String(node.partitions)),
          h('td', { class: 'num' }, String(node.monitors)),
          h('td', { class: 'mono' }, node.http_addr || '—'),
          h('td', {}, when(node.last_heartbeat)),
          h('td', { class: 'row-actions' }, h('button', { class: 'btn small danger',
            type: 'button', disabled: single || node.draining || !node.alive,
            title: single ? 'A single node has nowhere to move its monitors' : undefined,
            onclick: () => drain(node) }, 'Drain'))));
      }
    } catch (failure) {
      error.textContent = 'Could not load the cluster: ' + failure.message;
      error.hidden = false;
    }
  }

  const stop = poll(refresh, 5000);
  return () => {
    dead = true;
    stop();
  };
}
