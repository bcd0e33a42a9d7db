// The test service: SAP CAP serving SQLite, bound to loopback only (cds-serve would listen on
// every interface). In memory, unless POOLDBAPI_CAP_DATABASE names a file: then the data
// outlives the process (the fault tests kill it), and the schema is deployed when the file is new.
const cds = require('@sap/cds')
const fs = require('fs')
// POOLDBAPI_CAP_DELAY_MS: every request answered that much later (a distant service's latency)
const delay = Number(process.env.POOLDBAPI_CAP_DELAY_MS || 0)
cds.on('bootstrap', (app) => {
  if (delay > 0) app.use((req, res, next) => setTimeout(next, delay))
  const listen = app.listen.bind(app)
  app.listen = (port, ...rest) => listen(port, '127.0.0.1', ...rest)
})
const file = process.env.POOLDBAPI_CAP_DATABASE
if (file) cds.env.requires.db.credentials = { url: file }
module.exports = (o) => {
  if (file) o.in_memory = !fs.existsSync(file)  // (cds.server deploys where in_memory is set)
  return cds.server(o)
}
