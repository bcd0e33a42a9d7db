// The test service: SAP CAP serving an in-memory SQLite, bound to loopback only
// (cds-serve would listen on every interface).
const cds = require('@sap/cds')
cds.on('bootstrap', (app) => {
  const listen = app.listen.bind(app)
  app.listen = (port, ...rest) => listen(port, '127.0.0.1', ...rest)
})
module.exports = cds.server
