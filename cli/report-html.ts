import { ImagePosture, PostureReport, PostureSummary } from '../lambdas/domain/posture';

/**
 * The posture report as one self-contained HTML page: the summaries as tables and the lineage as an inline SVG, each
 * image coloured by its most severe open finding and outlined when it drifted behind its parent. No external assets.
 */

const SEVERITY_COLOUR: Readonly<Record<string, string>> = {
  CRITICAL: '#b3122e',
  HIGH: '#e4572e',
  MEDIUM: '#f0a202',
  LOW: '#7fb069',
  INFORMATIONAL: '#7fb069',
  UNTRIAGED: '#9aa5b1',
};
const CLEAN = '#2e8b57';
const EXTERNAL = '#d9dee4';
const DRIFT = '#7b2cbf';

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Rows by depth below the roots (externals first), so every parent sits above its children. */
function layers(images: readonly ImagePosture[]): ImagePosture[][] {
  const byImage = new Map(images.map((i) => [i.image, i]));
  const depth = new Map<string, number>();
  const depthOf = (image: string, seen = new Set<string>()): number => {
    if (depth.has(image)) return depth.get(image)!;
    if (seen.has(image)) return 0;
    seen.add(image);
    const parents = (byImage.get(image)?.parents ?? []).filter((p) => byImage.has(p));
    const d = parents.length === 0 ? 0 : 1 + Math.max(...parents.map((p) => depthOf(p, seen)));
    depth.set(image, d);
    return d;
  };
  const rows: ImagePosture[][] = [];
  for (const image of images) (rows[depthOf(image.image)] ??= []).push(image);
  return rows.map((r) => r.sort((a, b) => a.image.localeCompare(b.image)));
}

function shortName(image: string): string {
  return image.length > 34 ? `…${image.slice(-33)}` : image;
}

export function renderLineageSvg(images: readonly ImagePosture[]): string {
  const rows = layers(images);
  const boxW = 250;
  const boxH = 64;
  const gapY = 70;
  const width = Math.max(1300, Math.max(...rows.map((r) => r.length)) * (boxW + 30) + 40);
  const height = rows.length * (boxH + gapY) + 20;
  const pos = new Map<string, { x: number; y: number }>();
  rows.forEach((row, r) => {
    const step = width / row.length;
    row.forEach((image, i) => pos.set(image.image, { x: step * i + step / 2 - boxW / 2, y: 20 + r * (boxH + gapY) }));
  });
  const edges: string[] = [];
  for (const image of images) {
    const to = pos.get(image.image)!;
    for (const parent of image.parents) {
      const from = pos.get(parent);
      if (!from) continue;
      edges.push(`<path d="M${from.x + boxW / 2},${from.y + boxH} C${from.x + boxW / 2},${from.y + boxH + gapY / 2} ${to.x + boxW / 2},${to.y - gapY / 2} ${to.x + boxW / 2},${to.y}" fill="none" stroke="#8892a0" stroke-width="1.5" marker-end="url(#arrow)"/>`);
    }
  }
  const nodes = images.map((image) => {
    const { x, y } = pos.get(image.image)!;
    const external = image.tier === 'external';
    const fill = external ? EXTERNAL : image.highestSeverity ? SEVERITY_COLOUR[image.highestSeverity] : CLEAN;
    const text = external ? '#1f2933' : '#ffffff';
    const drifted = image.versionsBehind > 0;
    const counts = image.openFindings;
    const detail = external
      ? 'external base'
      : counts.total > 0
        ? `${counts.total} open · ${counts.CRITICAL} crit · ${counts.HIGH} high`
        : 'no open findings';
    return [
      `<g><title>${escapeHtml(image.image)}${image.owner ? ` (${escapeHtml(image.owner)})` : ''}</title>`,
      `<rect x="${x}" y="${y}" width="${boxW}" height="${boxH}" rx="8" fill="${fill}" stroke="${drifted ? DRIFT : '#52606d'}" stroke-width="${drifted ? 4 : 1}"${drifted ? ' stroke-dasharray="8 4"' : ''}/>`,
      `<text x="${x + 10}" y="${y + 20}" fill="${text}" font-size="13" font-weight="600">${escapeHtml(shortName(image.image))}</text>`,
      `<text x="${x + 10}" y="${y + 38}" fill="${text}" font-size="11">${escapeHtml(image.tier)}${image.owner ? ` · ${escapeHtml(image.owner)}` : ''}</text>`,
      `<text x="${x + 10}" y="${y + 55}" fill="${text}" font-size="11">${escapeHtml(detail)}${drifted ? ` · ${image.versionsBehind} behind (${image.daysBehind} d)` : ''}</text>`,
      '</g>',
    ].join('');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" role="img" aria-label="image lineage">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#8892a0"/></marker></defs>',
    ...edges,
    ...nodes,
    '</svg>',
  ].join('\n');
}

function legend(): string {
  const item = (colour: string, label: string, dashed = false): string =>
    `<span class="legend"><svg width="18" height="12"><rect x="1" y="1" width="16" height="10" rx="2" fill="${dashed ? '#fff' : colour}" stroke="${dashed ? DRIFT : '#52606d'}" stroke-width="${dashed ? 2.5 : 1}"${dashed ? ' stroke-dasharray="4 2"' : ''}/></svg>${label}</span>`;
  return [item(SEVERITY_COLOUR.CRITICAL, 'critical'), item(SEVERITY_COLOUR.HIGH, 'high'), item(SEVERITY_COLOUR.MEDIUM, 'medium'), item(SEVERITY_COLOUR.LOW, 'low'), item(CLEAN, 'no open findings'), item(EXTERNAL, 'external base'), item(DRIFT, 'drifted (built from an older parent)', true)].join(' ');
}

function summaryRow(s: PostureSummary): string {
  const o = s.openFindings;
  const cell = (n: number, severity: string): string => `<td class="num"${n > 0 ? ` style="color:${SEVERITY_COLOUR[severity]};font-weight:700"` : ''}>${n}</td>`;
  return [
    '<tr>',
    `<th>${s.owner === '*' ? 'organization' : escapeHtml(s.owner)}</th>`,
    `<td class="num">${s.images}</td>`,
    cell(o.CRITICAL, 'CRITICAL'),
    cell(o.HIGH, 'HIGH'),
    cell(o.MEDIUM, 'MEDIUM'),
    cell(o.LOW, 'LOW'),
    `<td>${s.oldestUnpatched ? `${escapeHtml(s.oldestUnpatched.vulnerabilityId)} in ${escapeHtml(s.oldestUnpatched.image)} (${s.oldestUnpatched.ageDays} d)` : '—'}</td>`,
    `<td class="num">${s.drifted.length}</td>`,
    `<td>${s.activeExceptions.map((e) => `${escapeHtml(e.vulnerabilityId)} until ${escapeHtml(e.expiresAt.slice(0, 10))}`).join('<br>') || '—'}${s.expiredExceptions.length ? `<br><em>${s.expiredExceptions.length} expired</em>` : ''}</td>`,
    `<td style="white-space:nowrap">${s.campaigns.completed} done · ${s.campaigns.failed} failed · ${s.campaigns.running} running</td>`,
    `<td class="num">${s.meanTimeToRemediateDays === null ? '—' : `${s.meanTimeToRemediateDays} d`}</td>`,
    '</tr>',
  ].join('');
}

export function renderPostureHtml(report: PostureReport): string {
  const org = report.organization;
  const drifted = org.drifted
    .map((d) => `<li><b>${escapeHtml(d.image)}</b> — ${d.parents.map((p) => `${escapeHtml(p.parent)}: ${p.versionsBehind} version${p.versionsBehind === 1 ? '' : 's'} behind for ${p.daysBehind} days`).join('; ')}</li>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Patchline posture ${escapeHtml(report.generatedAt.slice(0, 10))}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#1f2933;background:#f7f9fb}
h1{margin:0 0 4px;font-size:24px} .sub{color:#52606d;margin-bottom:16px}
table{border-collapse:collapse;background:#fff;margin-bottom:20px;font-size:13px;width:100%}
th,td{border:1px solid #d9dee4;padding:6px 8px;text-align:left;vertical-align:top} thead th{background:#eef2f6}
td.num{text-align:right} tr.org th,tr.org td{background:#fdf6e3}
.legend{margin-right:14px;font-size:12px;white-space:nowrap} .legend svg{vertical-align:middle;margin-right:4px}
.panel{background:#fff;border:1px solid #d9dee4;padding:12px;margin-bottom:20px;overflow-x:auto}
ul{margin:6px 0 0 18px;font-size:13px}
</style></head><body>
<h1>Patchline posture</h1>
<div class="sub">generated ${escapeHtml(report.generatedAt)} · ${org.openFindings.total} open findings · ${org.drifted.length} drifted images · ${org.activeExceptions.length} active exceptions${report.untracked.openFindings ? ` · ${report.untracked.openFindings} findings on untracked repositories` : ''}</div>
<table><thead><tr><th>owner</th><th>images</th><th>critical</th><th>high</th><th>medium</th><th>low</th><th>oldest unpatched</th><th>drifted</th><th>exceptions</th><th>campaigns</th><th>MTTR</th></tr></thead>
<tbody>${summaryRow(org).replace('<tr>', '<tr class="org">')}${report.owners.map(summaryRow).join('')}</tbody></table>
<div class="panel"><div>${legend()}</div>${renderLineageSvg(report.images)}</div>
${drifted ? `<div class="panel"><b>Drifted images</b><ul>${drifted}</ul></div>` : ''}
</body></html>
`;
}
