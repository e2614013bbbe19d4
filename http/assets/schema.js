// Form fields generated from a type's JSON Schema (the `schema` of /api/v1/check-types and
// /api/v1/reaction-types): a label with a required mark and the field's type, its description,
// its default as a placeholder, and an input that suits it. Arrays and nested objects are JSON.

import { h } from './dom.js';

// Follows `$ref` and a nullable `anyOf`/`oneOf` to the schema that describes the value.
function resolve(schema, root) {
  let current = schema || {};
  const outer = current;
  for (let depth = 0; depth < 8; depth += 1) {
    if (current.$ref) {
      const name = current.$ref.split('/').pop();
      current = { ...((root.$defs || root.definitions || {})[name] || {}), ...without$ref(current) };
      continue;
    }
    const alternatives = current.anyOf || current.oneOf;
    if (alternatives) {
      const real = alternatives.filter((alt) => alt.type !== 'null');
      if (real.length > 0 && real.every((alt) => alt.const !== undefined)) {
        current = { ...current, enum: real.map((alt) => alt.const) };
        delete current.anyOf;
        delete current.oneOf;
        continue;
      }
      if (real.length === 1) {
        const rest = { ...current };
        delete rest.anyOf;
        delete rest.oneOf;
        current = { ...real[0], ...rest };
        continue;
      }
    }
    break;
  }
  return { ...current, description: outer.description || current.description,
    default: outer.default !== undefined ? outer.default : current.default };
}

function without$ref(schema) {
  const copy = { ...schema };
  delete copy.$ref;
  return copy;
}

function baseType(schema) {
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return types.find((t) => t && t !== 'null');
}

function kindOf(schema) {
  if (Array.isArray(schema.enum)) return 'enum';
  const type = baseType(schema);
  if (type === 'boolean') return 'boolean';
  if (type === 'integer' || type === 'number') return 'number';
  if (type === 'string') return 'string';
  return 'json';
}

function typeLabel(schema, kind) {
  if (kind === 'enum') return 'one of';
  if (kind === 'json') return (baseType(schema) || 'value') + ', as JSON';
  return baseType(schema);
}

// Builds the fields of `info` (a type from the catalog) into `container`, named `prefix.field`,
// filled from `values` (an existing config, secrets as "***"). Returns a reader.
export function buildFields(container, info, prefix, values) {
  const schema = info.schema || {};
  const required = new Set(schema.required || []);
  const secrets = new Set(info.secret_fields || []);
  const fields = [];
  // Required fields first, then the rest, each group in the schema's order.
  const entries = Object.entries(schema.properties || {});
  entries.sort(([a], [b]) => Number(required.has(b)) - Number(required.has(a)));
  for (const [name, raw] of entries) {
    if (name === 'type') continue;
    const property = resolve(raw, schema);
    const kind = kindOf(property);
    const path = prefix + '.' + name;
    const id = 'f-' + path.replace(/[^a-zA-Z0-9_-]/g, '-');
    const current = values ? values[name] : undefined;
    const isRequired = required.has(name);
    const placeholder = property.default !== undefined && property.default !== null
      ? 'default: ' + JSON.stringify(property.default) : undefined;
    let input;
    if (kind === 'boolean') {
      const initial = current !== undefined ? current : property.default;
      input = h('input', { type: 'checkbox', id, name: path, checked: Boolean(initial) });
    } else if (kind === 'enum') {
      input = h('select', { id, name: path },
        isRequired ? null : h('option', { value: '' }, placeholder || '(not set)'),
        property.enum.map((option) => h('option', { value: String(option) }, String(option))));
      if (current !== undefined && current !== null) input.value = String(current);
    } else if (kind === 'json') {
      input = h('textarea', { id, name: path, rows: 3, spellcheck: 'false', placeholder,
        class: 'mono' });
      if (current !== undefined && current !== null) input.value = JSON.stringify(current, null, 2);
    } else {
      const type = secrets.has(name) ? 'password' : kind === 'number' ? 'number' : 'text';
      input = h('input', { type, id, name: path, placeholder, spellcheck: 'false',
        autocomplete: secrets.has(name) ? 'new-password' : 'off',
        min: property.minimum, max: property.maximum });
      if (current !== undefined && current !== null) input.value = String(current);
    }
    const error = h('p', { class: 'field-error', 'data-error-for': path });
    const label = h('label', { for: id }, name,
      isRequired ? h('span', { class: 'req', title: 'required' }, ' *') : null,
      h('span', { class: 'type' }, typeLabel(property, kind)),
      secrets.has(name) ? h('span', { class: 'type secret' }, 'secret') : null);
    const help = property.description ? h('p', { class: 'help' }, property.description) : null;
    container.append(h('div', { class: 'field', 'data-field': path }, label, input, help, error));
    fields.push({ name, path, kind, input, isRequired, property });
  }
  return () => readFields(fields);
}

// Reads the fields into a config object; returns `{ value, errors }` (errors by path).
function readFields(fields) {
  const value = {};
  const errors = {};
  for (const field of fields) {
    const { input, kind, name, path } = field;
    if (kind === 'boolean') {
      value[name] = input.checked;
      continue;
    }
    const raw = input.value.trim();
    if (raw === '') {
      if (field.isRequired) errors[path] = name + ' is required';
      continue;
    }
    if (kind === 'number') {
      const number = Number(raw);
      if (!Number.isFinite(number)) errors[path] = name + ' must be a number';
      else value[name] = number;
    } else if (kind === 'json') {
      try {
        value[name] = JSON.parse(raw);
      } catch (error) {
        errors[path] = name + ' is not valid JSON: ' + error.message;
      }
    } else if (kind === 'enum') {
      const option = field.property.enum.find((o) => String(o) === raw);
      value[name] = option === undefined ? raw : option;
    } else {
      value[name] = input.value;
    }
  }
  return { value, errors };
}

// Shows `message` next to the field named by the API's `error.field` (`check.codes[1]` goes
// to `check.codes`); returns false when no field on the form matches.
export function showFieldError(form, field, message) {
  let path = field;
  while (path) {
    const holder = form.querySelector('[data-field="' + CSS.escape(path) + '"]');
    if (holder) {
      holder.classList.add('invalid');
      const slot = holder.querySelector('.field-error');
      if (slot) slot.textContent = message;
      const input = holder.querySelector('input, select, textarea');
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      }
      return true;
    }
    const shorter = path.replace(/(\[[^\]]*\]|\.[^.[\]]*)$/, '');
    if (shorter === path) break;
    path = shorter;
  }
  return false;
}

export function clearFieldErrors(form) {
  for (const holder of form.querySelectorAll('.field.invalid')) holder.classList.remove('invalid');
  for (const slot of form.querySelectorAll('.field-error')) slot.textContent = '';
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}
