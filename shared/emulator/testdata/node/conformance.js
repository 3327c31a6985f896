// Runs the official Alibaba Cloud Node SDK core (@alicloud/openapi-client, generic callApi) against
// a running livepack Live OpenAPI emulator: Add, Describe, Update, Describe, Delete, and the error
// cases, checking the documented shapes and codes. Usage: node conformance.js http://127.0.0.1:PORT
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
  const calls = await (await fetch(new URL('/_emulator/calls', base))).json();
  const schemes = new Set(calls.map((c) => c.signature));
  assert.ok(schemes.has('V3') && schemes.has('V1'), `signature schemes seen: ${[...schemes]}`);
  console.log('ok');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
