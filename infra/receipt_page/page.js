// Cuentas Claras: the light receipt check (issue 18). No framework, no build step.
// Takes a receipt code, computes its digest here (schemas/privacy.py), fetches
// receipts/<2 hex>/<digest>.json and verifies it here: the log's signature on the
// checkpoint (C2SP signed-note), the witnesses' cosignatures (C2SP tlog-cosignature),
// each event's inclusion proof (RFC 9162 2.1.3.2), each publisher's key from its
// registry entry in the same log and the event's signature (schemas/receipt.py v2).
// Everything shown as verified is derived from the verified events alone.
(() => {
  'use strict';
  const cfg = JSON.parse(document.getElementById('cc-config').textContent);
  const enc = new TextEncoder();
  const subtle = globalThis.crypto && globalThis.crypto.subtle;

  // ------------------------------------------------------------------ bytes
  class Fail extends Error {}
  const fail = (m) => { throw new Fail(m); };
  const cat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let i = 0;
    for (const p of parts) { out.set(p, i); i += p.length; }
    return out;
  };
  const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const hex = (u8) => Array.from(u8, (x) => x.toString(16).padStart(2, '0')).join('');
  const b64e = (u8) => btoa(Array.from(u8, (x) => String.fromCharCode(x)).join(''));
  // Standard padded base64, canonical only (schemas/note.py: one spelling per signature).
  const b64d = (s, n, what) => {
    let raw = null;
    if (typeof s === 'string' && s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
      try { raw = Uint8Array.from(atob(s), (c) => c.charCodeAt(0)); } catch (e) { raw = null; }
    }
    if (!raw || b64e(raw) !== s || (n !== undefined && raw.length !== n)) fail(what + ' is not valid base64');
    return raw;
  };
  const sha256 = async (u8) => new Uint8Array(await subtle.digest('SHA-256', u8));

  // ------------------------------------------------------------------ receipt codes
  // schemas/privacy.py normalize_receipt_code and receipt_digest, exactly.
  const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  const SEPS = new Set(' \t\r\n\u00a0-\u2010\u2011\u2012\u2013\u2014\u2015\u2212');
  const normalize = (text) => {
    if (typeof text !== 'string' || [...text].length > 64) return null;
    let c = [...text.normalize('NFKC').toUpperCase()].filter((ch) => !SEPS.has(ch)).join('');
    if ([...c].length === 18 && c.startsWith('CC')) c = c.slice(2);
    c = c.replace(/[OIL]/g, (ch) => (ch === 'O' ? '0' : '1'));
    if (c.length !== 16 || [...c].some((ch) => !CROCKFORD.includes(ch))) return null;
    return ['CC', c.slice(0, 4), c.slice(4, 8), c.slice(8, 12), c.slice(12)].join('-');
  };
  const digestOf = async (code) => hex(await sha256(cat(enc.encode('cuentas-claras/receipt-digest/v1\0'),
    enc.encode(code))));

  // ------------------------------------------------------------------ Ed25519
  // WebCrypto where the browser has it, else the vendored noble-ed25519 (RFC 8032 mode).
  let noble = null;
  const edVerify = async (pk, sig, msg) => {
    if (!noble) {
      try {
        const key = await subtle.importKey('raw', pk, { name: 'Ed25519' }, false, ['verify']);
        return await subtle.verify({ name: 'Ed25519' }, key, sig, msg);
      } catch (e) {
        if (e instanceof DOMException && e.name === 'DataError') return false;  // not a point
        noble = await import('./vendor/noble-ed25519.js');
      }
    }
    try { return await noble.verifyAsync(sig, msg, pk, { zip215: false }); } catch (e) { return false; }
  };

  // ------------------------------------------------------------------ keys (schemas/keys.py)
  const keyId = async (name, alg, pk) => (await sha256(cat(enc.encode(name + '\n'), [alg], pk))).slice(0, 4);
  const parseKey = async (s, alg) => {
    const i = s.indexOf('+');
    if (i < 1 || s[i + 9] !== '+') fail('bad verifier key');
    const name = s.slice(0, i), raw = b64d(s.slice(i + 10), 33, 'verifier key');
    if (raw[0] !== alg || /[\s+]/.test(name)) fail('bad verifier key');
    const pk = raw.slice(1), id = await keyId(name, alg, pk);
    if (hex(id) !== s.slice(i + 1, i + 9)) fail('verifier key ' + name + ': key id does not match');
    return { name, id, pk };
  };

  // ------------------------------------------------------------------ signed notes (schemas/note.py)
  const parseNote = (s) => {
    if (/[\x00-\x09\x0b-\x1f]/.test(s) || !s.endsWith('\n')) fail('malformed checkpoint note');
    const split = s.lastIndexOf('\n\n');
    if (split < 0) fail('checkpoint note has no signatures');
    const text = s.slice(0, split + 1), block = s.slice(split + 2);
    if (!block) fail('checkpoint note has no signatures');
    const seen = new Set();
    const sigs = block.slice(0, -1).split('\n').map((line) => {
      const m = /^\u2014 ([^\s+]+) (\S+)$/u.exec(line);
      if (!m) fail('malformed signature line');
      const blob = b64d(m[2], undefined, 'signature');
      if (blob.length <= 4) fail('short signature');
      const k = m[1] + ' ' + hex(blob.slice(0, 4));
      if (seen.has(k)) fail('repeated signature');
      seen.add(k);
      return { name: m[1], id: blob.slice(0, 4), sig: blob.slice(4) };
    });
    return { text, sigs };
  };
  const MAX_TS = (1n << 63n) - 1n;
  const openCheckpoint = async (note, log, witnesses, min) => {
    const { text, sigs } = parseNote(note);
    const msg = enc.encode(text);
    let logged = false;
    for (const s of sigs) {
      if (s.name !== log.name || !eq(s.id, log.id)) continue;
      if (!(await edVerify(log.pk, s.sig, msg))) fail("the log's signature on the checkpoint does not verify");
      logged = true;
    }
    if (!logged) fail('the checkpoint is not signed by the log');
    const lines = text.slice(0, -1).split('\n');
    if (lines.length < 3 || lines[0] !== log.name || !/^(0|[1-9][0-9]*)$/.test(lines[1])
        || lines.slice(3).some((l) => !l)) fail('malformed checkpoint');
    const cp = { size: Number(lines[1]), root: b64d(lines[2], 32, 'root hash'), times: [] };
    if (!Number.isSafeInteger(cp.size)) fail('tree size too large');
    for (const w of witnesses) {
      let ok = false;
      for (const s of sigs) {
        if (s.name !== w.name || !eq(s.id, w.id)) continue;
        if (s.sig.length !== 72) fail('cosignature by ' + w.name + ' is malformed');
        let t = 0n;
        for (const x of s.sig.slice(0, 8)) t = (t << 8n) | BigInt(x);
        if (t > MAX_TS) fail('cosignature by ' + w.name + ' has a bad time');
        const signed = cat(enc.encode('cosignature/v1\ntime ' + t + '\n'), msg);
        if (!(await edVerify(w.pk, s.sig.slice(8), signed))) fail('cosignature by ' + w.name + ' does not verify');
        if (!ok) cp.times.push(Number(t));
        ok = true;
      }
    }
    if (cp.times.length < min) fail(cp.times.length + ' of ' + witnesses.length + ' trusted witnesses cosigned, ' + min + ' required');
    return cp;
  };

  // ------------------------------------------------------------------ RFC 9162 2.1.3.2
  const node = (l, r) => sha256(cat([1], l, r));
  const verifyInclusion = async (leaf, index, size, proof, root) => {
    if (index >= size) fail('leaf index out of range');
    let fn = index, sn = size - 1, r = await sha256(cat([0], leaf));
    for (const p of proof) {
      if (sn === 0) fail('inclusion proof too long');
      if (fn % 2 === 1 || fn === sn) {
        r = await node(p, r);
        if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await node(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0 || !eq(r, root)) fail('inclusion proof does not match the checkpoint');
  };

  // ------------------------------------------------------------------ events (schemas/envelope.py)
  // The leaf is RFC 8785 JSON of {header, payload, signature}; the signature covers the domain
  // separator and the same JSON without its last member, "signature" (keys sort it last).
  const dec = new TextDecoder('utf-8', { fatal: true });
  const parseLeaf = (leaf, what) => {
    let text, obj;
    try { text = dec.decode(leaf); obj = JSON.parse(text); } catch (e) { fail(what + ' is not JSON'); }
    const m = /,"signature":"([A-Za-z0-9+/]{86}==)"\}$/.exec(text);
    if (!m || !text.startsWith('{"header":{') || !obj || obj.signature !== m[1]
        || Object.keys(obj).join() !== 'header,payload,signature') fail(what + ' is not a signed event');
    return { obj, signed: cat(enc.encode('cuentas-claras/event/v1\n'), enc.encode(text.slice(0, m.index) + '}')),
      sig: b64d(m[1], 64, 'signature') };
  };
  const tparse = (s) => {  // RFC 3339 UTC with Z: [ms, microseconds] for exact comparison
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z$/.exec(s || '');
    if (!m) fail('bad time ' + s);
    return [Date.parse(m[1] + 'Z'), Number((m[2] || '').padEnd(6, '0'))];
  };
  const tless = (a, b) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  const ADMITS = { 'publisher.registered': 'public_key', 'publisher.key_rotated': 'new_public_key' };
  const aboutTransfer = (o) => (o.header.type === 'flag.changed'
    ? (o.payload.subject && o.payload.subject.kind === 'transfer' ? o.payload.subject.id : null)
    : (o.header.type.startsWith('transfer.') ? o.payload.transfer_id : null));

  let trusted = null;
  const loadKeys = async () => trusted || (trusted = {
    log: await parseKey(cfg.log, 1),
    witnesses: await Promise.all(cfg.witnesses.map((w) => parseKey(w, 4))),
  });

  // Every check of schemas/receipt_doc.py verify_document; returns the verified events' JSON.
  const verifyDocument = async (doc, digest) => {
    const keys = await loadKeys();
    if (!doc || doc.format !== 'cuentas-claras/receipt-doc/v1' || doc.receipt_digest !== digest
        || !Array.isArray(doc.events) || !doc.events.length || !Array.isArray(doc.registry)) fail('not a receipt document for this code');
    const cp = await openCheckpoint(String(doc.checkpoint), keys.log, keys.witnesses, cfg.min_witnesses);
    const proven = async (e, what) => {
      const leaf = b64d(e.leaf, undefined, what);
      if (!Number.isSafeInteger(e.leaf_index) || e.leaf_index < 0 || !Array.isArray(e.inclusion_proof)) fail(what + ' is malformed');
      await verifyInclusion(leaf, e.leaf_index, cp.size, e.inclusion_proof.map((h) => b64d(h, 32, 'proof hash')), cp.root);
      return parseLeaf(leaf, what);
    };
    const entries = [];
    for (const [i, e] of doc.registry.entries()) entries.push(await proven(e, 'registry entry ' + i));
    const out = [];
    let last = -1, tid = null;
    for (const [i, e] of doc.events.entries()) {
      const what = 'event ' + i, ev = await proven(e, what), o = ev.obj, h = o.header;
      if (e.leaf_index <= last) fail('events are not in log order');
      last = e.leaf_index;
      const r = doc.registry[e.registry_entry], entry = entries[e.registry_entry];
      if (!Number.isInteger(e.registry_entry) || !entry) fail(what + ": no registry entry proves its publisher's key");
      const field = ADMITS[entry.obj.header.type], p = entry.obj.payload;
      if (!field || p.publisher_id !== h.publisher_id) fail(what + ': the registry entry admits no key of its publisher');
      if (r.leaf_index >= e.leaf_index) fail(what + ': the registry entry was logged after it');
      const key = await parseKey(String(p[field]), 1);
      if (key.name !== h.publisher_id || hex(key.id) !== h.key_id) fail(what + ': the key it names is not the admitted one');
      if (tless(tparse(h.event_time), tparse(p.valid_from))) fail(what + ': signed before its key was valid');
      if (!(await edVerify(key.pk, ev.sig, ev.signed))) fail(what + ": the publisher's signature does not verify");
      const about = aboutTransfer(o);
      if (!about || (tid !== null && about !== tid)) fail('the events are not all about one transfer');
      tid = about;
      out.push(o);
    }
    if (!out.some((o) => o.header.type === 'transfer.sent' && o.payload.receipt_digest === digest)) {
      fail("the transfer's receipt digest is not this code's");
    }
    return { events: out, checkpoint: cp };
  };

  // ------------------------------------------------------------------ words, numbers, dates
  const LANGS = cfg.langs;
  const qs = new URLSearchParams(location.search);
  const lang = [qs.get('lang'), ...(navigator.languages || [navigator.language])]
    .map((l) => (l || '').slice(0, 2).toLowerCase()).find((l) => LANGS.includes(l)) || 'es';
  const nav = navigator.language || '';
  const locale = nav.slice(0, 2).toLowerCase() === lang ? nav : cfg.locales[lang];
  const words = lang === 'es' ? Promise.resolve(cfg.strings)
    : fetch('i18n/' + lang + '.json').then((r) => (r.ok ? r.json() : cfg.strings)).catch(() => cfg.strings);
  let S = cfg.strings;
  const plural = new Intl.PluralRules(locale);
  const int = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const t = (key, vars = {}) => {
    let e = S[key] ?? cfg.strings[key] ?? key;
    if (typeof e === 'object') e = e[plural.select(vars.n)] ?? e.other;
    return e.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? (Number.isInteger(vars[k]) ? int.format(vars[k]) : vars[k]) : m));
  };
  const code = (group, value) => (S[group + '.' + value] === undefined ? value : t(group + '.' + value));
  const digits = (ccy) => cfg.exponents[ccy] ?? 2;
  const money = (amount, ccy) => {
    if (amount === null || amount === undefined || !ccy) return '—';
    const d = digits(ccy), s = String(Math.abs(amount)).padStart(d + 1, '0');
    const text = (amount < 0 ? '-' : '') + (d ? s.slice(0, -d) + '.' + s.slice(-d) : s);
    return new Intl.NumberFormat(locale, { style: 'currency', currency: ccy, currencyDisplay: 'code',
      minimumFractionDigits: d, maximumFractionDigits: d }).format(text);
  };
  const pct = (bps, d = 2) => (bps === null || bps === undefined ? '—'
    : new Intl.NumberFormat(locale, { style: 'percent', minimumFractionDigits: d, maximumFractionDigits: d }).format(bps / 10000));
  // The numbers the flag explanations name (flag_help.*), the locale's way.
  const helpVars = () => ({ tolerance: pct(cfg.th.tolerance_bps, 1), ceiling: pct(cfg.th.ceiling_bps, 0),
    cost_slack: new Intl.NumberFormat(locale, { minimumFractionDigits: 1 }).format(cfg.th.cost_slack_bps / 100),
    grace_hours: cfg.th.grace_hours, window_minutes: cfg.th.window_minutes, refund_days: cfg.th.refund_days });
  const unit = (u, v) => new Intl.NumberFormat(locale, { style: 'unit', unit: u, unitDisplay: 'short' }).format(v);
  const duration = (sec) => {  // schemas/l10n.py format_duration: the two largest units
    const s = Math.max(0, Math.floor(sec));
    let parts;
    if (s < 3600) parts = [['minute', s >= 60 ? Math.floor((s + 30) / 60) : (s ? 1 : 0)]];
    else if (s < 86400) parts = [['hour', Math.floor(s / 3600)], ['minute', Math.floor((s % 3600) / 60)]];
    else parts = [['day', Math.floor(s / 86400)], ['hour', Math.floor((s % 86400) / 3600)]];
    if (parts.length === 2 && parts[1][1] === 0) parts = parts.slice(0, 1);
    return parts.map(([u, v]) => unit(u, v)).join(' ');
  };
  const dt = new Intl.DateTimeFormat(locale, { year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric',
    minute: '2-digit', timeZoneName: 'long' });
  const when = (iso) => {
    const ms = tparse(iso)[0];
    return h('time', { datetime: iso, title: t('common.utc_hover', { utc: new Date(ms).toISOString().replace('.000Z', 'Z') }) },
      dt.format(new Date(ms)));
  };

  // ------------------------------------------------------------------ the transfer, from its events
  // As stream_processors/rules/transfers.py derives its state, and dashboard/views/track.py shows it.
  const OPEN = ['open', 'acknowledged'];
  const rate = (text) => {  // "17.25" -> [1725n, 100n]
    const [i, f = ''] = text.split('.');
    return [BigInt(i + f), 10n ** BigInt(f.length)];
  };
  const divRound = (n, d) => {  // half away from zero, d > 0
    const q = n / d, r = n % d;
    return Number(2n * (r < 0n ? -r : r) >= d ? q + (n < 0n ? -1n : 1n) : q);
  };
  const effectiveBps = (s, paid) => {  // schemas/costs.py effective_cost_bps, exactly, in integers
    const [rn, rd] = rate(s.exchange_rate), ps = 10n ** BigInt(digits(s.send.currency));
    const pr = 10n ** BigInt(digits(s.receive_promised.currency)), send = BigInt(s.send.amount);
    const den = pr * rn * send;
    const via = BigInt(s.disclosed_cost_bps) * den + 10000n * (BigInt(s.receive_promised.amount) - BigInt(paid)) * rd * ps;
    const provable = 10000n * ((BigInt(s.fee.amount) + send) * pr * rn - BigInt(paid) * rd * ps);
    return divRound(via > provable ? via : provable, den);
  };
  const transferView = (events, now) => {
    const by = (type) => events.filter((o) => o.header.type === type);
    const s = by('transfer.sent')[0].payload, sentAt = by('transfer.sent')[0].header.event_time;
    const payouts = by('transfer.paid_out').map((o) => o.payload);
    const mine = payouts.filter((p) => p.paid.currency === s.receive_promised.currency);
    const refunds = by('transfer.refunded'), cancels = by('transfer.cancelled');
    const status = refunds.length ? 'refunded' : cancels.length ? 'cancelled' : payouts.length ? 'paid' : 'sent';
    const first = (mine.length ? mine : payouts).slice().sort((a, b) => (tless(tparse(a.paid_at), tparse(b.paid_at)) ? -1 : 1))[0];
    const paid = mine.reduce((n, p) => n + p.paid.amount, 0);
    const flags = new Map();
    for (const o of by('flag.changed')) {
      const p = o.payload, f = flags.get(p.flag_id);
      if (f) Object.assign(f, { status: p.status, last: p.changed_at, amount: p.amount_at_stake || f.amount });
      else flags.set(p.flag_id, { type: p.flag_type, status: p.status, accountable: p.accountable, raised: p.changed_at,
        last: p.changed_at, amount: p.amount_at_stake || null });
    }
    return { s, sentAt, status, payouts, first, paid, flags: [...flags.values()], now,
      effective: mine.length ? effectiveBps(s, paid) : null,
      delivery: first ? (tparse(first.paid_at)[0] - tparse(sentAt)[0]) / 1000 : null };
  };

  // ------------------------------------------------------------------ the page
  const h = (tag, attrs = {}, ...kids) => {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, v);
    for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) el.append(k);
    return el;
  };
  const out = document.getElementById('out');
  const show = (...kids) => { out.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false)); };
  const note = (kind, testid, ...kids) => h('div', { class: 'note ' + kind, role: kind === 'bad' ? 'alert' : 'status', 'data-testid': testid }, ...kids);
  const metric = (label, value, help) => h('div', { class: 'metric' }, h('dt', {}, label), h('dd', {}, value),
    help ? h('dd', { class: 'help' }, help) : null);

  const render = (v, cp) => {
    const s = v.s, promised = s.receive_promised, ccy = promised.currency;
    const open = v.flags.filter((f) => OPEN.includes(f.status));
    const promise = () => {
      if (v.status === 'cancelled' || v.status === 'refunded') return code('transfer_status', v.status);
      if (v.first) {
        const late = (tparse(v.first.paid_at)[0] - tparse(s.available_by)[0]) / 1000;
        return late <= 0 ? t('track.promise_met') : t('track.promise_missed', { late: duration(late) });
      }
      return v.now > tparse(s.available_by)[0] ? t('track.promise_overdue') : t('track.promise_pending');
    };
    const paidStatus = () => (v.paid === promised.amount ? t('track.paid_full') : v.paid < promised.amount
      ? t('track.paid_short', { missing: money(promised.amount - v.paid, ccy) })
      : t('track.paid_more', { extra: money(v.paid - promised.amount, ccy) }));
    const cost = v.effective ?? s.disclosed_cost_bps;
    const goals = { target: pct(cfg.sdg.target, 0), ceiling: pct(cfg.sdg.ceiling, 0) };
    const lines = [[v.sentAt, t('track.ev_sent', { amount: money(s.send.amount, s.send.currency), fee: money(s.fee.amount, s.fee.currency) })],
      [s.available_by, t('track.ev_promised_by', { amount: money(promised.amount, ccy), status: promise() })]];
    if (v.first) lines.push([v.first.paid_at, t('track.ev_paid', { amount: money(v.paid, ccy), status: paidStatus() })]);
    for (const f of v.flags) {
      const what = code('flag', f.type);
      let line = t('track.ev_flag', { what, status: code('flag_status', f.status) });
      if (f.amount) line += ' · ' + t('track.at_stake', { amount: money(f.amount.amount, f.amount.currency) });
      lines.push([f.raised, line]);
      if (!OPEN.includes(f.status)) lines.push([f.last, t('track.ev_flag_closed', { what, status: code('flag_status', f.status) })]);
    }
    lines.sort((a, b) => (tless(tparse(a[0]), tparse(b[0])) ? -1 : tless(tparse(b[0]), tparse(a[0])) ? 1 : 0));
    show(
      note('ok', 'receipt-verified', h('strong', {}, t('track.verified', { n: cp.times.length, index: int.format(v.sentIndex), size: int.format(cp.size) }))),
      h('h2', {}, t('track.status_title', { status: code('transfer_status', v.status) })),
      v.status === 'paid' && !open.length ? note('ok', 'receipt-paid-ok', t('track.paid_ok'))
        : open.length ? note('warn', 'receipt-open-flags', t('track.has_flags', { n: open.length })) : null,
      h('dl', { class: 'metrics' },
        metric(t('track.sent'), money(s.send.amount, s.send.currency)),
        metric(t('track.fee'), money(s.fee.amount, s.fee.currency)),
        metric(t('track.promised'), money(promised.amount, ccy)),
        metric(t('track.paid'), v.payouts.length ? money(v.paid, ccy) : t('track.not_paid_yet')),
        metric(t('track.cost'), pct(cost), t('track.cost_help', { disclosed: pct(s.disclosed_cost_bps), effective: pct(v.effective) })),
        metric(t('track.delivery'), v.delivery === null ? t('track.not_paid_yet') : duration(v.delivery), t('track.delivery_help'))),
      h('p', { class: 'caption' }, t(cost <= cfg.sdg.target ? 'track.cost_below_target' : cost <= cfg.sdg.ceiling
        ? 'track.cost_between' : 'track.cost_above_ceiling', goals)),
      h('p', { class: 'caption' }, t('track.route', { operator: s.operator, a: s.corridor.from, b: s.corridor.to })),
      h('h2', {}, t('track.timeline')),
      !v.first && v.status === 'sent' ? h('p', { class: 'caption' }, t('track.waiting_payout')) : null,
      h('ul', { class: 'timeline' }, lines.map(([w, what]) => h('li', {}, h('strong', {}, when(w)), ' — ' + what))),
      v.flags.length ? [h('h2', {}, t('track.flags_title')), h('ul', { class: 'flags' }, v.flags.map((f) => h('li', {},
        h('strong', {}, code('flag', f.type)), ' · ' + code('flag_status', f.status) + ' · ' + t('col.accountable') + ': '
        + f.accountable + (f.amount ? ' · ' + t('col.at_stake') + ': ' + money(f.amount.amount, f.amount.currency) : '')
        + ' · ' + t('col.raised') + ': ', when(f.raised),
        S['flag_help.' + f.type] === undefined ? null : h('p', { class: 'help' }, t('flag_help.' + f.type, helpVars())))))] : null,
      h('p', { class: 'caption' }, t('check.how', { n: cp.times.length, events: v.count })),
    );
  };

  let run = 0;
  const check = async (typed) => {
    const mine = ++run;
    const c = normalize(typed);
    if (!c) return show(note('warn', 'receipt-bad-code', t('track.bad_code')));
    for (const a of document.querySelectorAll('#langs a')) a.search = '?lang=' + a.hreflang + '&code=' + c;
    if (!subtle) return show(note('bad', 'receipt-not-verified', t('track.verify_failed', { reason: 'this page needs https' })));
    show(note('info', 'receipt-checking', t('check.checking')));
    const digest = await digestOf(c);
    let res;
    try {
      res = await fetch('receipts/' + digest.slice(0, 2) + '/' + digest + '.json', { cache: 'no-cache' });
    } catch (e) {
      return mine === run && show(note('warn', 'receipt-unavailable', t('check.network_error')));
    }
    if (mine !== run) return;
    if (res.status === 404) {
      return show(note('warn', 'receipt-not-found', h('p', {}, t('track.not_found')), h('p', { class: 'caption' }, t('track.not_found_hint'))));
    }
    if (!res.ok) return show(note('warn', 'receipt-unavailable', t('check.network_error')));
    try {
      let doc;
      try { doc = await res.json(); } catch (e) { fail('the document is not JSON'); }
      const ok = await verifyDocument(doc, digest);
      S = await words;
      if (mine !== run) return;
      const v = transferView(ok.events, Date.now());
      v.count = ok.events.length;
      v.sentIndex = doc.events[ok.events.findIndex((o) => o.header.type === 'transfer.sent')].leaf_index;
      render(v, ok.checkpoint);
      document.documentElement.dataset.verifiedMs = String(Math.round(performance.now()));
    } catch (e) {
      if (mine !== run) return;
      S = await words;
      const reason = e instanceof Fail ? e.message : 'error: ' + (e && e.message);
      show(note('bad', 'receipt-not-verified', t('track.verify_failed', { reason })));
      document.documentElement.dataset.failedMs = String(Math.round(performance.now()));
    }
  };

  // Words of the chosen language on the static parts, then the code from the URL or the form.
  words.then((w) => {
    S = w;
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
    for (const a of document.querySelectorAll('#langs a')) if (a.hreflang === lang) a.setAttribute('aria-current', 'true');
  });
  const form = document.getElementById('f'), input = document.getElementById('code');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const u = new URL(location.href);
    u.searchParams.set('code', input.value);
    history.replaceState(null, '', u);
    check(input.value);
  });
  if (qs.get('code')) { input.value = qs.get('code').slice(0, 64); check(input.value); }
  globalThis.cc = { normalize, digestOf, verifyDocument, check };
})();
