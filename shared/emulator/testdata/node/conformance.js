// Runs the official Alibaba Cloud Node SDK core (@alicloud/openapi-client, generic callApi) against
// a running livepack Live OpenAPI emulator: Add, Describe, Update, Describe, Delete, and the error
// cases, then the online list and the publish history of a stream pushed while it runs, checking
// the documented shapes and codes. Usage: node conformance.js http://127.0.0.1:PORT
'use strict';
const assert = require('node:assert/strict');
const OpenApi = require('@alicloud/openapi-client');
const OpenApiUtil = require('@alicloud/openapi-util').default;
const Util = require('@alicloud/tea-util');

const base = new URL(process.argv[2]);

function client(keyId, secret, signatureAlgorithm) {
  const config = new OpenApi.Config({
    accessKeyId: keyId, accessKeySecret: secret, endpoint: base.host, protocol: 'http',
  });
  if (signatureAlgorithm) config.signatureAlgorithm = signatureAlgorithm;
  return new OpenApi.default(config);
}

async function call(c, action, query) {
  const params = new OpenApi.Params({
    action, version: '2016-11-01', protocol: 'HTTPS', pathname: '/', method: 'POST',
    authType: 'AK', style: 'RPC', reqBodyType: 'formData', bodyType: 'json',
  });
  const request = new OpenApi.OpenApiRequest({ query: OpenApiUtil.query(query) });
  const res = await c.callApi(params, request, new Util.RuntimeOptions({}));
  return res.body;
}

async function fails(c, action, query, status, code) {
  try {
    await call(c, action, query);
  } catch (err) {
    assert.equal(err.code, code, `${action}: code`);
    assert.equal(err.data.statusCode, status, `${action}: status`);
    assert.ok(err.data.RequestId, `${action}: RequestId`);
    return;
  }
  assert.fail(`${action} should fail with ${code}`);
}

async function sequence(c, app) {
  const target = { DomainName: 'play.example.com', AppName: app, StreamName: '*' };
  let body = await call(c, 'AddLivePackageConfig', { ...target, Protocol: 'LLHLS_CMAF', SegmentDuration: 2 });
  assert.ok(body.RequestId);
  body = await call(c, 'DescribeLivePackageConfig', { DomainName: 'play.example.com', AppName: app });
  let list = body.LivePackageConfigList.LivePackageConfig;
  assert.equal(list.length, 1);
  assert.deepEqual(list[0], { ...target, Protocol: 'LLHLS_CMAF', SegmentNum: 3, SegmentDuration: 2, PartDuration: 700, IgnoreTranscode: true });
  assert.equal(body.TotalNum, 1);
  assert.equal(body.TotalPage, 1);
  assert.equal(body.PageNum, 1);
  await call(c, 'UpdateLivePackageConfig', { ...target, Protocol: 'HLS_CMAF', SegmentNum: 5, SegmentDuration: 4, IgnoreTranscode: false });
  body = await call(c, 'DescribeLivePackageConfig', { DomainName: 'play.example.com', AppName: app });
  list = body.LivePackageConfigList.LivePackageConfig;
  assert.deepEqual(list[0], { ...target, Protocol: 'HLS_CMAF', SegmentNum: 5, SegmentDuration: 4, PartDuration: 0, IgnoreTranscode: false });
  await call(c, 'DeleteLivePackageConfig', target);
  body = await call(c, 'DescribeLivePackageConfig', { DomainName: 'play.example.com', AppName: app });
  assert.equal(body.TotalNum, 0);
}

// Streams: an encoder starts, restarts and stops a push through /_emulator/streams; the SDK sees
// it in DescribeLiveStreamsOnlineList (light listing, raw only, paging) and in the publish history.
async function streams(c) {
  const post = async (body) => {
    const res = await fetch(new URL('/_emulator/streams', base), { method: 'POST', body: JSON.stringify(body) });
    assert.equal(res.status, 200, `${body.action}: status`);
    return res.json();
  };
  const stream = { DomainName: 'play.example.com', AppName: 'node', StreamName: 'cam' };
  const started = await post({ action: 'start', ...stream, TranscodeTemplates: ['lhd'] });
  assert.match(started.PublishTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  let online = await call(c, 'DescribeLiveStreamsOnlineList', { DomainName: 'play.example.com', AppName: 'node' });
  assert.deepEqual(online.OnlineInfo.LiveStreamOnlineInfo.map((s) => `${s.StreamName}:${s.Transcoded}`), ['cam:no', 'cam_lhd:yes']);
  online = await call(c, 'DescribeLiveStreamsOnlineList', { DomainName: 'play.example.com', AppName: 'node', StreamType: 'raw', OnlyStream: 'yes' });
  assert.deepEqual(online.OnlineInfo.LiveStreamOnlineInfo, [{ ...stream, PublishTime: started.PublishTime }]);
  online = await call(c, 'DescribeLiveStreamsOnlineList', { DomainName: 'play.example.com', PageSize: 1, PageNum: 2 });
  assert.equal(online.OnlineInfo.LiveStreamOnlineInfo.length, 1);
  assert.equal(online.PageNum, 2);
  assert.ok(online.TotalNum >= 3 && online.TotalPage === online.TotalNum);
  await post({ action: 'restart', ...stream });
  const stopped = await post({ action: 'stop', ...stream });
  assert.ok(stopped.StopTime >= stopped.PublishTime);
  const day = 24 * 3600 * 1000;
  const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const history = await call(c, 'DescribeLiveStreamsPublishList', {
    DomainName: 'play.example.com', AppName: 'node', StartTime: iso(Date.now() - day), EndTime: iso(Date.now() + day),
  });
  const rows = history.PublishInfo.LiveStreamPublishInfo;
  assert.deepEqual(rows.map((r) => `${r.StreamName}:${r.Transcoded}:${Boolean(r.StopTime)}`), ['cam:no:true', 'cam:no:true']);
  assert.equal(history.TotalNum, 2);
  await fails(c, 'DescribeLiveStreamsPublishList', { DomainName: 'play.example.com', StartTime: iso(Date.now()) }, 400, 'MissingParam');
}

async function main() {
  const v3 = client('emulator', 'emulator-secret');
  await sequence(v3, 'node-v3');
  await sequence(client('emulator', 'emulator-secret', 'v2'), 'node-v1');

  const target = { DomainName: 'play.example.com', AppName: 'node-err', StreamName: '*', Protocol: 'HLS_CMAF' };
  await call(v3, 'AddLivePackageConfig', target);
  await fails(v3, 'AddLivePackageConfig', target, 400, 'ConfigAlreadyExists');
  await fails(v3, 'AddLivePackageConfig', { ...target, DomainName: 'nowhere.example.com' }, 404, 'InvalidDomain.NotFound');
  await fails(v3, 'AddLivePackageConfig', { ...target, AppName: 'x', SegmentDuration: 11 }, 400, 'InvalidSegmentDuration');
  await fails(v3, 'AddLivePackageConfig', { ...target, AppName: 'y', Protocol: 'LLHLS_TS', SegmentDuration: 1, PartDuration: 600 }, 400, 'InvalidPartDuration');
  await fails(v3, 'AddLivePackageConfig', { ...target, AppName: 'z', Protocol: 'FLV' }, 400, 'InvalidProtocol');
  await fails(v3, 'UpdateLivePackageConfig', { ...target, AppName: 'missing', SegmentNum: 3, SegmentDuration: 5 }, 404, 'InvalidConfig.NotFound');
  await fails(client('emulator', 'wrong-secret'), 'DescribeLiveDomainDetail', { DomainName: 'play.example.com' }, 400, 'SignatureDoesNotMatch');
  await fails(client('nobody', 'x'), 'DescribeLiveDomainDetail', { DomainName: 'play.example.com' }, 404, 'InvalidAccessKeyId.NotFound');

  const detail = await call(v3, 'DescribeLiveDomainDetail', { DomainName: 'push.example.com' });
  assert.equal(detail.DomainDetail.LiveDomainType, 'liveEdge');
  const domains = await call(v3, 'DescribeLiveUserDomains', { LiveDomainType: 'liveVideo', PageSize: 2, PageNumber: 1 });
  assert.equal(domains.Domains.PageData.length, 2);
  assert.ok(domains.TotalCount >= 3);
  const online = await call(v3, 'DescribeLiveStreamsOnlineList', { DomainName: 'play.example.com' });
  assert.ok(online.OnlineInfo.LiveStreamOnlineInfo.some((s) => s.StreamName === 'final' && s.PublishUrl));
  await streams(v3);
  const calls = await (await fetch(new URL('/_emulator/calls', base))).json();
  const schemes = new Set(calls.map((c) => c.signature));
  assert.ok(schemes.has('V3') && schemes.has('V1'), `signature schemes seen: ${[...schemes]}`);
  console.log('ok');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
