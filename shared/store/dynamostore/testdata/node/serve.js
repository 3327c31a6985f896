// Serves dynalite (in memory) on 127.0.0.1 at a port the system picks and prints its URL on the
// first line: the Go test helper reads it, so there is no window in which another process could
// take a port chosen in advance. It exits when its standard input closes, so a test binary that
// dies without cleaning up never leaves a server behind.
'use strict'
const dynalite = require('dynalite')

// Tables become ACTIVE after a short CREATING phase, as on DynamoDB, so Init's wait is exercised
// without slowing every test down.
const server = dynalite({ createTableMs: 50, deleteTableMs: 50, updateTableMs: 50 })
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${server.address().port}\n`)
})
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()
