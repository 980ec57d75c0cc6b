// The auditor's panel of map.html: search by id, filters by severity / check / county, a list that zooms to each
// finding, markers that keep findings visible at province scale, a print view. Data: the JSON block
// #zoning-findings (a GeoJSON FeatureCollection, most severe last); config: window.ZONING_AUDIT.
(function () {
  const cfg = window.ZONING_AUDIT;
  const map = window[cfg.map] || (0, eval)(cfg.map);
  const data = JSON.parse(document.getElementById('zoning-findings').textContent);
  const feats = data.features;
  const rectBlock = document.getElementById('zoning-rectified');
  const rectified = rectBlock ? JSON.parse(rectBlock.textContent) : [];  // searchable by id, listed apart
  const colour = p => cfg.severity_colours[p.severity] || '#999999';
  const label = f => cfg.labels[f] || f;
  const esc = s => String(s === null || s === undefined ? '' : s).replace(/[&<>"']/g,
    c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
  const fmt = (f, v) => (typeof v === 'number' && /_(mu|ha)$/.test(f)) ? v.toFixed(2) :
    (typeof v === 'number' && f.startsWith('centroid_')) ? v.toFixed(6) : v;
  const popup = p => '<table class="zp">' + cfg.popup.filter(f => f in p && p[f] !== '' && p[f] !== null)
    .map(f => `<tr><th>${esc(label(f))}</th><td>${esc(fmt(f, p[f]))}</td></tr>`).join('') + '</table>';

  const canvas = L.canvas({padding: 0.5});
  const polys = [], marks = [];
  feats.forEach((f, i) => {
    const p = f.properties;
    const poly = L.geoJSON(f, {style: () => ({color: colour(p), fillColor: colour(p), weight: 1.5, fillOpacity: 0.75})});
    poly.bindPopup(popup(p)); poly.bindTooltip(`${esc(p.severity_zh)} ${esc(p.check_zh)}<br>${esc(p.violation_id)}`);
    // critical findings: a black ring that reads on every fill (the zones' red included)
    const critical = p.severity === 'critical';
    const mk = L.circleMarker([p.centroid_lat, p.centroid_lon], {renderer: canvas, radius: critical ? 6 : 5,
      color: critical ? '#000000' : '#333333', weight: critical ? 2 : 0.6, fillColor: colour(p), fillOpacity: 0.95});
    mk.bindPopup(popup(p)); mk.bindTooltip(`${esc(p.severity_zh)} ${esc(p.check_zh)}<br>${esc(p.violation_id)}`);
    polys.push(poly); marks.push(mk);
  });
  const polyGroup = L.featureGroup().addTo(map), markGroup = L.featureGroup().addTo(map);
  // folium declares the layer control with `let`: a global binding, but not a window property
  let control = null;
  try { control = (0, eval)(cfg.control); } catch (e) { control = null; }
  if (control && control.addOverlay) control.addOverlay(polyGroup, cfg.title_layer);
  // the markers belong to the findings' entry in the layer control: switched off and on with it
  map.on('overlayremove', e => { if (e.layer === polyGroup) map.removeLayer(markGroup); });
  map.on('overlayadd', e => { if (e.layer === polyGroup) markGroup.addTo(map); });

  const $ = id => document.getElementById(id);
  function options(sel, field, textField) {
    const seen = new Map();
    feats.forEach(f => seen.set(f.properties[field], f.properties[textField] || f.properties[field]));
    [...seen.entries()].sort((a, b) => String(a[1]).localeCompare(String(b[1]), 'zh'))
      .forEach(([v, t]) => { const o = document.createElement('option'); o.value = v; o.textContent = t || '(县界外)';
        sel.appendChild(o); });
  }
  options($('za-sev'), 'severity', 'severity_zh');
  options($('za-check'), 'check_id', 'check_zh');
  options($('za-county'), 'county_id', 'county_name');
  if ($('za-change')) options($('za-change'), 'change', 'change_zh');  // 新增 / 扩建 / 原有, with a baseline

  let shown = [], listed = 0;
  function matches(p) {
    const s = $('za-sev').value, c = $('za-check').value, k = $('za-county').value;
    const ch = $('za-change') ? $('za-change').value : '';
    const q = $('za-q').value.trim().toLowerCase();
    return (!s || p.severity === s) && (!c || p.check_id === c) && (!k || p.county_id === k) &&
      (!ch || p.change === ch) &&
      (!q || String(p.violation_id).toLowerCase().includes(q) || String(p.parcel_id).toLowerCase().includes(q));
  }
  function apply() {
    polyGroup.clearLayers(); markGroup.clearLayers();
    shown = [];
    feats.forEach((f, i) => { if (matches(f.properties)) shown.push(i); });
    // most severe last: drawn on top, and picked first by a click
    shown.forEach(i => { polyGroup.addLayer(polys[i]); });
    zoomed();
    $('za-count').textContent = `显示 ${shown.length} / ${feats.length} 个问题图斑` + (cfg.omitted ?
      `（地图仅含最严重的 ${feats.length} 个，共 ${cfg.total}）` : '');
    $('za-list').replaceChildren(); listed = 0; listRectified(); more();
  }
  function zoomed() {
    // polygons are specks at province scale: markers then, polygons when zoomed in
    markGroup.clearLayers();
    if (map.getZoom() < cfg.marker_below_zoom) shown.forEach(i => markGroup.addLayer(marks[i]));
  }
  function go(i) {
    const p = feats[i].properties;
    map.fitBounds(polys[i].getBounds(), {maxZoom: 16});
    setTimeout(() => polys[i].openPopup(), 300);
    $('za-q').dataset.last = p.violation_id;
  }
  let rectShown = [];
  function rectifiedMatches() {
    const q = $('za-q').value.trim().toLowerCase();
    return !q ? [] : rectified.filter(r => String(r.violation_id).toLowerCase().includes(q) ||
      String(r.parcel_id).toLowerCase().includes(q)).slice(0, 50);
  }
  function listRectified() {
    rectShown = rectifiedMatches();
    rectShown.forEach(r => {
      const li = document.createElement('li');
      li.className = 'za-rectified';
      li.innerHTML = `<i style="background:#969696"></i><b>${esc(r.violation_id)}</b> 已整改 rectified<br>` +
        `${esc(r.check_zh)} · ${esc(r.county_name)} · ${esc(r.verdict || '')} ${esc(r.status || '')}`;
      li.onclick = () => {
        map.setView([r.lat, r.lon], 15, {animate: false});
        L.popup().setLatLng([r.lat, r.lon]).setContent('<table class="zp">' + Object.entries(r)
          .filter(([k, v]) => !['lat', 'lon'].includes(k) && v !== null && v !== '')
          .map(([k, v]) => `<tr><th>${esc(label(k))}</th><td>${esc(fmt(k, v))}</td></tr>`).join('') +
          '</table>').openOn(map);
      };
      $('za-list').appendChild(li);
    });
  }
  function more() {
    const list = $('za-list');
    const order = shown.slice().reverse();  // most severe first in the list
    order.slice(listed, listed + 200).forEach(i => {
      const p = feats[i].properties, li = document.createElement('li');
      li.innerHTML = `<i style="background:${colour(p)}"></i><b>${esc(p.violation_id)}</b><br>` +
        `${esc(p.check_zh)} · ${esc(p.severity_zh)} · ${esc(p.county_name)} · ${fmt('area_mu', p.area_mu)} 亩`;
      li.onclick = () => go(i);
      list.appendChild(li);
    });
    listed = Math.min(order.length, listed + 200);
    $('za-more').style.display = listed < order.length ? '' : 'none';
  }
  ['za-sev', 'za-check', 'za-county', 'za-change'].forEach(id => $(id) && $(id).addEventListener('change', apply));
  $('za-q').addEventListener('input', apply);
  $('za-q').addEventListener('keydown', e => { if (e.key === 'Enter' && shown.length) go(shown[shown.length - 1]); });
  $('za-more').onclick = more;
  $('za-print').onclick = () => window.print();
  // on paper the whole region, beside the panel (title, date, provenance); the view comes back after printing
  const region = cfg.region ? L.latLngBounds(cfg.region) : null;
  let before = null;
  function toPrint() {
    if (before || !region) return;
    before = [map.getCenter(), map.getZoom(), map.options.zoomSnap];
    map.options.zoomSnap = 0.1;  // fill the page, not the nearest whole zoom level
    map.invalidateSize({animate: false});
    // the panel on the left, the legend on the right: the region fits between them
    const legend = $('zoning-legend');
    map.fitBounds(region, {animate: false, paddingTopLeft: [$('zoning-audit').offsetWidth + 16, 8],
                           paddingBottomRight: [(legend ? legend.offsetWidth : 0) + 8, 8]});
  }
  function fromPrint() {
    if (!before) return;
    map.options.zoomSnap = before[2];
    map.invalidateSize({animate: false});
    map.setView(before[0], before[1], {animate: false});
    before = null;
  }
  window.addEventListener('beforeprint', toPrint);
  window.addEventListener('afterprint', fromPrint);
  const printing = window.matchMedia('print');
  if (printing.addEventListener) printing.addEventListener('change', e => (e.matches ? toPrint() : fromPrint()));
  map.on('zoomend', zoomed);
  L.DomEvent.disableClickPropagation($('zoning-audit')); L.DomEvent.disableScrollPropagation($('zoning-audit'));
  apply();
  window.zoningAudit = {apply, go, toPrint, fromPrint, region, rectified: () => rectShown.map(r => r.violation_id),
                        shown: () => shown.map(i => feats[i].properties.violation_id)};
})();
