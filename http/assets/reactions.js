// The reactions: a table with edit and delete (confirmed).

import { api, withQuery } from './api.js';
import { clear, confirmAction, flash, h, when } from './dom.js';

export function render(main) {
  const body = h('tbody', { id: 'reaction-rows' });
  const error = h('p', { class: 'banner error', hidden: true });
  let cursors = [null];
  let nextCursor = null;
  const next = h('button', { class: 'btn small', type: 'button', onclick: () => {
    if (nextCursor) {
      cursors.push(nextCursor);
      load();
    }
  } }, 'Next →');
  const prev = h('button', { class: 'btn small', type: 'button', onclick: () => {
    cursors.pop();
    load();
  } }, '← Previous');
  main.append(h('div', { class: 'title-row' }, h('h1', {}, 'Reactions'),
    h('span', { class: 'spacer' }),
    h('a', { class: 'btn primary', href: '#/reactions/new', id: 'new-reaction' }, 'New reaction')),
  error,
  h('div', { class: 'panel flush' }, h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, ['Name', 'Type', 'Call on', 'Trigger', 'Frequency', 'Last run', '']
      .map((t) => h('th', {}, t)))), body)),
  h('div', { class: 'pager' }, prev, next));

  let dead = false;
  async function load() {
    try {
      const page = await api('GET', withQuery('/api/v1/reactions',
        { limit: 100, cursor: cursors[cursors.length - 1] }));
      if (dead) return;
      nextCursor = page.next_cursor;
      prev.disabled = cursors.length <= 1;
      next.disabled = !nextCursor;
      clear(body);
      if (!page.items.length) {
        body.append(h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No reactions yet.')));
      }
      for (const reaction of page.items) {
        const href = '#/reactions/' + encodeURIComponent(reaction.id) + '/edit';
        body.append(h('tr', { 'data-id': reaction.id },
          h('td', { class: 'name' }, h('a', { href }, reaction.name)),
          h('td', { class: 'mono' }, reaction.action?.type || '—'),
          h('td', {}, reaction.call_on),
          h('td', { class: 'num' }, String(reaction.trigger)),
          h('td', { class: 'num' }, reaction.frequency_secs ? reaction.frequency_secs + ' s'
            : 'once per episode'),
          h('td', {}, when(reaction.last_run_at)),
          h('td', { class: 'row-actions' }, h('a', { class: 'btn small', href }, 'Edit'),
            h('button', { class: 'btn small danger', type: 'button',
              onclick: () => remove(reaction) }, 'Delete'))));
      }
    } catch (failure) {
      error.textContent = 'Could not load the reactions: ' + failure.message;
      error.hidden = false;
    }
  }

  async function remove(reaction) {
    const ok = await confirmAction('Delete reaction "' + reaction.name + '"?',
      'Monitors that use it must drop it first.', 'Delete', true);
    if (!ok) return;
    try {
      await api('DELETE', '/api/v1/reactions/' + encodeURIComponent(reaction.id));
      flash('Reaction deleted.', 'ok');
      load();
    } catch (failure) {
      flash('Could not delete: ' + failure.message, 'error');
    }
  }

  load();
  return () => {
    dead = true;
  };
}
