'use strict';

// Validate and aggregate an uploaded CSV file: the row count, and the sum and mean of every
// numeric column. Call it synchronously (/function/csv-worker) or queue it
// (/async-function/csv-worker with X-Callback-Url): the callback receives the same answer.
//
// A file it cannot read (no data rows, an empty or repeated column name, a row whose cell count
// differs from the header's) is answered with 422 and the line at fault. With the environment
// variable SKIP_BAD_ROWS=true, rows with the wrong cell count are skipped and listed instead.

// Splits one line into cells; double-quoted cells may hold commas ("a,b") and quotes ("").
function cells(line) {
  const out = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') { cell += '"'; i++; }
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"' && cell.trim() === '') { quoted = true; cell = ''; }
    else if (ch === ',') { out.push(cell); cell = ''; }
    else cell += ch;
  }
  if (quoted) return null;
  out.push(cell);
  return out.map((c) => c.trim());
}

module.exports = async (event, context) => {
  const malformed = (error, line) =>
    context.status(422).succeed(line === undefined ? { error } : { error, line });
  const skipBadRows = /^(1|true|yes)$/i.test(process.env.SKIP_BAD_ROWS || '');
  const text = Buffer.isBuffer(event.body) ? event.body.toString('utf8') : String(event.body || '');
  const lines = text.split(/\r?\n/).map((l, i) => [i + 1, l]).filter(([, l]) => l.trim() !== '');
  if (lines.length < 2) {
    return malformed('send a CSV file with a header row and at least one data row');
  }
  const [headerLine, headerText] = lines[0];
  const header = cells(headerText);
  if (header === null) return malformed('the header has an unclosed quote', headerLine);
  const blank = header.findIndex((h) => h === '');
  if (blank >= 0) return malformed(`column ${blank + 1} of the header has no name`, headerLine);
  const repeated = header.find((h, i) => header.indexOf(h) !== i);
  if (repeated !== undefined) return malformed(`the header names column ${repeated} twice`, headerLine);

  const sums = header.map(() => 0);
  const numeric = header.map(() => true);
  const skipped = [];
  let rows = 0;
  for (const [number, line] of lines.slice(1)) {
    const row = cells(line);
    const error = row === null
      ? 'an unclosed quote'
      : row.length !== header.length
        ? `${row.length} cells, the header has ${header.length}`
        : null;
    if (error !== null) {
      if (!skipBadRows) return malformed(`line ${number} has ${error}`, number);
      skipped.push({ line: number, error });
      continue;
    }
    rows += 1;
    row.forEach((cell, c) => {
      const n = Number(cell);
      if (cell === '' || Number.isNaN(n)) numeric[c] = false;
      else sums[c] += n;
    });
  }
  if (rows === 0) return malformed('every data row was skipped');
  const columns = {};
  header.forEach((name, c) => {
    if (numeric[c]) columns[name] = { sum: sums[c], mean: sums[c] / rows };
  });
  return skipped.length ? { rows, columns, skipped } : { rows, columns };
};
