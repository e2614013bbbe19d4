// The dashboard shell: sign-in and sign-out, the navigation, and a hash router that renders one
// page at a time (each page returns a function that stops its polling).

import { api, clearToken, setToken, token, whenUnauthorized } from './api.js';
import { clear, flash, h } from './dom.js';
import * as board from './board.js';
import * as monitor from './monitor.js';
import * as forms from './forms.js';
import * as reactions from './reactions.js';
import * as cluster from './cluster.js';

const ROUTES = [
  [/^#\/?$/, 'board', (main) => board.render(main)],
  [/^#\/monitors\/new$/, 'board', (main) => forms.monitorForm(main, null)],
  [/^#\/monitors\/([^/]+)\/edit$/, 'board', (main, id) => forms.monitorForm(main, id)],
  [/^#\/monitors\/([^/]+)$/, 'board', (main, id) => monitor.render(main, id)],
  [/^#\/reactions$/, 'reactions', (main) => reactions.render(main)],
  [/^#\/reactions\/new$/, 'reactions', (main) => forms.reactionForm(main, null)],
  [/^#\/reactions\/([^/]+)\/edit$/, 'reactions', (main, id) => forms.reactionForm(main, id)],
  [/^#\/cluster$/, 'cluster', (main) => cluster.render(main)],
];

let stopPage = null;

function renderChrome(section) {
  const nav = document.getElementById('nav');
  const session = document.getElementById('session');
  clear(nav);
  clear(session);
  if (!token()) return;
  for (const [key, label, href] of [
    ['board', 'Monitors', '#/'],
    ['reactions', 'Reactions', '#/reactions'],
    ['cluster', 'Cluster', '#/cluster'],
  ]) {
    nav.append(h('a', { href, class: key === section ? 'active' : undefined }, label));
  }
  session.append(h('button', { class: 'btn small', id: 'signout', type: 'button',
    onclick: signOut }, 'Sign out'));
}

function route() {
  if (stopPage) stopPage();
  stopPage = null;
  const main = document.getElementById('main');
  clear(main);
  if (!token()) {
    renderChrome(null);
    renderSignIn(main);
    return;
  }
  const hash = location.hash || '#/';
  for (const [pattern, section, page] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      renderChrome(section);
      stopPage = page(main, ...match.slice(1).map(decodeURIComponent)) || null;
      return;
    }
  }
  renderChrome(null);
  main.append(h('div', { class: 'panel empty' }, 'No such page. ',
    h('a', { href: '#/' }, 'Back to the monitors')));
}

function renderSignIn(main, reason) {
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off',
    spellcheck: 'false', placeholder: 'API token', 'aria-label': 'API token' });
  const error = h('p', { class: 'field-error', id: 'signin-error', role: 'alert' }, reason || '');
  const button = h('button', { class: 'btn primary', type: 'submit', id: 'signin-submit' },
    'Sign in');
  const form = h('form', { class: 'signin panel', id: 'signin', novalidate: true },
    h('h1', {}, 'Sign in to CloudRoutes'),
    h('p', { class: 'muted' }, 'Paste an API token. The admin token is printed when a node first ',
      'starts and kept in DATA_DIR/admin.token. It stays in this browser tab only.'),
    h('label', { for: 'token' }, 'API token'), input, error, button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const candidate = input.value.trim();
    error.textContent = '';
    if (!candidate) {
      error.textContent = 'Enter a token.';
      return;
    }
    button.disabled = true;
    try {
      await api('GET', '/api/v1/summary', undefined, candidate);
      setToken(candidate);
      route();
    } catch (failure) {
      error.textContent = failure.message;
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  main.append(form);
  input.focus();
}

function signOut() {
  clearToken();
  location.hash = '#/';
  route();
  flash('Signed out.');
}

whenUnauthorized((error) => {
  if (!token()) return;
  clearToken();
  if (stopPage) stopPage();
  stopPage = null;
  const main = document.getElementById('main');
  clear(main);
  renderChrome(null);
  renderSignIn(main, 'The node refused the token: ' + error.message);
});

window.addEventListener('hashchange', route);
route();
