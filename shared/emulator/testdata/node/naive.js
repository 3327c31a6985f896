// A naive per-policy script on the official Alibaba Cloud Node SDK core
// (@alicloud/openapi-client, V3 signature), the baseline livepack's benchmarks are measured
// against: for each policy in turn, DescribeLivePackageConfig on its domain and app, then Add
// (or Update when the app already has a config). A throttled call is retried after a fixed
// pause. Usage: node naive.js http://127.0.0.1:PORT policies.json [retry-pause-ms]
// Prints one JSON line: {"applied":N,"throttles":N,"ms":wall time of the calls}.
'use strict';
const fs = require('node:fs');
const OpenApi = require('@alicloud/openapi-client');
const OpenApiUtil = require('@alicloud/openapi-util').default;
const Util = require('@alicloud/tea-util');

const base = new URL(process.argv[2]);
const policies = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const pause = Number(process.argv[4] || 100);

const client = new OpenApi.default(new OpenApi.Config({
  accessKeyId: 'emulator', accessKeySecret: 'emulator-secret', endpoint: base.host, protocol: 'http',
}));
const runtime = new Util.RuntimeOptions({});
let throttles = 0;

async function call(action, query) {
  const params = new OpenApi.Params({
    action, version: '2016-11-01', protocol: 'HTTPS', pathname: '/', method: 'POST',
    authType: 'AK', style: 'RPC', reqBodyType: 'formData', bodyType: 'json',
  });
  for (;;) {
    try {
      const res = await client.callApi(params, new OpenApi.OpenApiRequest({ query: OpenApiUtil.query(query) }), runtime);
      return res.body;
    } catch (err) {
      if (!String(err.code).startsWith('Throttling')) throw err;
      throttles++;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

async function main() {
  const start = process.hrtime.bigint();
  let applied = 0;
  for (const p of policies) {
    const body = await call('DescribeLivePackageConfig', { DomainName: p.DomainName, AppName: p.AppName });
    const found = body.LivePackageConfigList.LivePackageConfig
      .some((c) => c.AppName === p.AppName && c.StreamName === p.StreamName);
    await call(found ? 'UpdateLivePackageConfig' : 'AddLivePackageConfig', p);
    applied++;
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  process.stdout.write(JSON.stringify({ applied, throttles, ms }) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
