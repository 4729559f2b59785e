// The reference WebTorrent tracker (npm bittorrent-tracker's Server),
// WebSocket only, on 127.0.0.1:PORT, with trakx's default announce
// interval (30 minutes; clients are told a fifth of it, as by trakx).
// Usage: node reference-server.mjs PORT
import { Server } from 'bittorrent-tracker'

const server = new Server({ udp: false, http: false, ws: true, interval: 30 * 60 * 1000 })
server.on('warning', () => {})
server.on('error', err => { console.error(err); process.exit(1) })
server.listen(Number(process.argv[2]), '127.0.0.1', () => console.log('listening'))
