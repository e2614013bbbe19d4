// Create and edit forms for monitors and reactions. The type-specific part comes from the
// type's JSON Schema (schema.js); the API's validation error is shown next to its field.

import { all, api } from './api.js';
import { clear, flash, h } from './dom.js';
import { buildFields, clearFieldErrors, showFieldError } from './schema.js';

let catalogs = {};

// The check or reaction type catalog, fetched once per page load.
async function catalog(kind) {
  if (!catalogs[kind]) {
    const path = kind === 'check' ? '/api/v1/check-types' : '/api/v1/reaction-types';
    catalogs[kind] = api('GET', path).then((answer) => answer.items).catch((error) => {
      catalogs[kind] = null;
      throw error;
    });
  }
  return catalogs[kind];
}

// A fixed (not schema-generated) field with its label, help and error slot.
function field(path, label, input, help, required = false) {
  input.id = input.id || 'f-' + path;
  input.name = input.name || path;
  return h('div', { class: 'field', 'data-field': path },
    h('label', { for: input.id }, label, required ? h('span', { class: 'req' }, ' *') : null),
    input, help ? h('p', { class: 'help' }, help) : null,
    h('p', { class: 'field-error', 'data-error-for': path }));
}

function typeSelect(id, types, selected) {
  const select = h('select', { id, name: id },
    h('option', { value: '' }, 'Choose a type…'),
    types.map((t) => h('option', { value: t.name }, t.name + ' — ' + t.description)));
  if (selected) select.value = selected;
  return select;
}

// Shows a failed save: next to its field when the form has it, else above the form.
function showSaveError(form, banner, error) {
  if (error.field && showFieldError(form, error.field, error.message)) {
    banner.hidden = true;
    return;
  }
  banner.textContent = error.message;
  banner.hidden = false;
}

function loading(main, title) {
  const note = h('p', { class: 'muted' }, 'Loading…');
  main.append(h('h1', {}, title), note);
  return note;
}

export function monitorForm(main, id) {
  let dead = false;
  const note = loading(main, id ? 'Edit monitor' : 'New monitor');
  Promise.all([catalog('check'), all('/api/v1/reactions'),
    id ? api('GET', '/api/v1/monitors/' + encodeURIComponent(id)) : null])
    .then(([types, reactionList, existing]) => {
      if (!dead) drawMonitorForm(main, note, id, types, reactionList, existing);
    })
    .catch((error) => {
      note.textContent = 'Could not load the form: ' + error.message;
    });
  return () => {
    dead = true;
  };
}

function drawMonitorForm(main, note, id, types, reactionList, existing) {
  note.remove();
  const banner = h('p', { class: 'banner error', id: 'form-error', hidden: true });
  const name = h('input', { type: 'text', maxlength: 200, value: existing?.name || '' });
  const type = typeSelect('check-type', types, existing?.check?.type);
  const typeHelp = h('p', { class: 'help' });
  const checkFields = h('div', { class: 'fields', id: 'check-fields' });
  const interval = h('input', { type: 'number', min: 1, max: 86400,
    value: existing ? existing.interval_secs ?? '' : 60 });
  const intervalField = field('interval_secs', 'Interval (seconds)', interval,
    'How often the check runs, 1 to 86400. Webhook-driven types have none.');
  const enabled = h('input', { type: 'checkbox', checked: existing ? existing.enabled : true });
  const tags = h('input', { type: 'text', value: (existing?.tags || []).join(', '),
    placeholder: 'shop, eu-west' });
  const attached = new Set(existing?.reactions || []);
  const reactionBoxes = reactionList.map((r) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'reactions', value: r.id, checked: attached.has(r.id) }),
    ' ', r.name, ' ', h('span', { class: 'muted' }, r.action?.type || '')));
  const reactionsBlock = h('div', { class: 'field', 'data-field': 'reactions', id: 'reactions' },
    h('span', { class: 'label' }, 'Reactions'),
    reactionBoxes.length ? h('div', { class: 'checks' }, reactionBoxes)
      : h('p', { class: 'muted' }, 'No reactions yet. ',
        h('a', { href: '#/reactions/new' }, 'Create one'), ' first, then attach it here.'),
    h('p', { class: 'field-error', 'data-error-for': 'reactions' }));
  let readCheck = () => ({ value: {}, errors: {} });
  const drawCheck = (values) => {
    clear(checkFields);
    const info = types.find((t) => t.name === type.value);
    typeHelp.textContent = info ? info.description : '';
    if (!info) return;
    interval.disabled = info.passive;
    intervalField.hidden = info.passive;
    readCheck = buildFields(checkFields, info, 'check', values);
  };
  type.addEventListener('change', () => drawCheck(null));
  const submit = h('button', { class: 'btn primary', type: 'submit', id: 'save' },
    id ? 'Save monitor' : 'Create monitor');
  const form = h('form', { class: 'panel form', id: 'monitor-form', novalidate: true },
    banner,
    field('name', 'Name', name, null, true),
    h('div', { class: 'field', 'data-field': 'check' },
      h('label', { for: 'check-type' }, 'Check type', h('span', { class: 'req' }, ' *')),
      type, typeHelp, h('p', { class: 'field-error', 'data-error-for': 'check' })),
    checkFields, intervalField,
    field('enabled', 'Enabled', enabled, 'A disabled monitor does not run.'),
    field('tags', 'Tags', tags, 'Comma-separated.'),
    reactionsBlock,
    h('div', { class: 'actions' }, h('a', { class: 'btn', href: id
      ? '#/monitors/' + encodeURIComponent(id) : '#/' }, 'Cancel'), submit));
  main.append(form);
  drawCheck(existing?.check || null);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    banner.hidden = true;
    if (!type.value) {
      showFieldError(form, 'check', 'Choose a check type.');
      return;
    }
    const { value: check, errors } = readCheck();
    const body = {
      name: name.value.trim(),
      check: { type: type.value, ...check },
      enabled: enabled.checked,
      tags: tags.value.split(',').map((t) => t.trim()).filter(Boolean),
      reactions: [...form.querySelectorAll('input[name="reactions"]:checked')].map((b) => b.value),
    };
    if (!interval.disabled && interval.value.trim() !== '') {
      body.interval_secs = Number(interval.value);
    }
    const local = Object.entries(errors);
    if (local.length) {
      for (const [path, message] of local) showFieldError(form, path, message);
      return;
    }
    submit.disabled = true;
    try {
      const saved = id
        ? await api('PUT', '/api/v1/monitors/' + encodeURIComponent(id), body)
        : await api('POST', '/api/v1/monitors', body);
      flash(id ? 'Monitor saved.' : 'Monitor created.', 'ok');
      location.hash = '#/monitors/' + encodeURIComponent(saved.id);
    } catch (error) {
      showSaveError(form, banner, error);
    } finally {
      submit.disabled = false;
    }
  });
}

export function reactionForm(main, id) {
  let dead = false;
  const note = loading(main, id ? 'Edit reaction' : 'New reaction');
  Promise.all([catalog('reaction'),
    id ? api('GET', '/api/v1/reactions/' + encodeURIComponent(id)) : null])
    .then(([types, existing]) => {
      if (!dead) drawReactionForm(main, note, id, types, existing);
    })
    .catch((error) => {
      note.textContent = 'Could not load the form: ' + error.message;
    });
  return () => {
    dead = true;
  };
}

function drawReactionForm(main, note, id, types, existing) {
  note.remove();
  const banner = h('p', { class: 'banner error', id: 'form-error', hidden: true });
  const name = h('input', { type: 'text', maxlength: 200, value: existing?.name || '' });
  const type = typeSelect('action-type', types, existing?.action?.type);
  const typeHelp = h('p', { class: 'help' });
  const actionFields = h('div', { class: 'fields', id: 'action-fields' });
  const trigger = h('input', { type: 'number', min: 0, max: 1000, value: existing?.trigger ?? 1 });
  const frequency = h('input', { type: 'number', min: 0, max: 604800,
    value: existing?.frequency_secs ?? 0 });
  const callOn = h('select', {}, ['failed', 'healthy', 'both'].map((v) =>
    h('option', { value: v }, v)));
  callOn.value = existing?.call_on || 'failed';
  let readAction = () => ({ value: {}, errors: {} });
  const drawAction = (values) => {
    clear(actionFields);
    const info = types.find((t) => t.name === type.value);
    typeHelp.textContent = info ? info.description : '';
    if (info) readAction = buildFields(actionFields, info, 'action', values);
  };
  type.addEventListener('change', () => drawAction(null));
  const submit = h('button', { class: 'btn primary', type: 'submit', id: 'save' },
    id ? 'Save reaction' : 'Create reaction');
  const form = h('form', { class: 'panel form', id: 'reaction-form', novalidate: true },
    banner,
    field('name', 'Name', name, null, true),
    h('div', { class: 'field', 'data-field': 'action' },
      h('label', { for: 'action-type' }, 'Reaction type', h('span', { class: 'req' }, ' *')),
      type, typeHelp, h('p', { class: 'field-error', 'data-error-for': 'action' })),
    actionFields,
    field('trigger', 'Trigger', trigger,
      'Results in a row with the status before it fires, 0 to 1000 (0 acts as 1).'),
    field('frequency_secs', 'Frequency (seconds)', frequency,
      '0 fires once per failure episode; more fires again that often while it lasts.'),
    field('call_on', 'Call on', callOn, 'failed, healthy (recovery) or both.'),
    h('div', { class: 'actions' }, h('a', { class: 'btn', href: '#/reactions' }, 'Cancel'),
      submit));
  main.append(form);
  drawAction(existing?.action || null);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    banner.hidden = true;
    if (!type.value) {
      showFieldError(form, 'action', 'Choose a reaction type.');
      return;
    }
    const { value: action, errors } = readAction();
    const local = Object.entries(errors);
    if (local.length) {
      for (const [path, message] of local) showFieldError(form, path, message);
      return;
    }
    const body = {
      name: name.value.trim(),
      action: { type: type.value, ...action },
      trigger: Number(trigger.value || 0),
      frequency_secs: Number(frequency.value || 0),
      call_on: callOn.value,
    };
    submit.disabled = true;
    try {
      if (id) await api('PUT', '/api/v1/reactions/' + encodeURIComponent(id), body);
      else await api('POST', '/api/v1/reactions', body);
      flash(id ? 'Reaction saved.' : 'Reaction created.', 'ok');
      location.hash = '#/reactions';
    } catch (error) {
      showSaveError(form, banner, error);
    } finally {
      submit.disabled = false;
    }
  });
}
