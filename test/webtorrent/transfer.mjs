// Two real WebTorrent clients, in two processes with a WebSocket each,
// transfer a file over WebRTC, having found each other only through the
// tracker under test.
//
// Usage: node transfer.mjs ws://127.0.0.1:PORT/announce
// This process seeds; a second one (this file, role "leech") downloads.
// DHT, LSD, UPnP/NAT-PMP and web seeds are off; WebRTC is bound to
// 127.0.0.1 with no STUN server; the tracker is the magnet link's only one.
// Exits 0 when the leecher holds the seeder's bytes (SHA-256) and got them
// over a WebRTC wire; 1, saying why, otherwise or after 60 s.
import { fork } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import WebTorrent from 'webtorrent'

const [tracker, role, magnet, want] = process.argv.slice(2)
if (!tracker) {
  console.error('usage: node transfer.mjs ws://HOST:PORT/announce')
  process.exit(2)
}
const fail = (why) => { console.error(`FAIL (${role || 'seed'}):`, why); process.exit(1) }
setTimeout(() => fail('no transfer within 60 s'), 60_000).unref()

const client = new WebTorrent({
  dht: false, lsd: false, natUpnp: false, natPmp: false, webSeeds: false, utp: false,
  tracker: { rtcConfig: { iceServers: [], bindAddress: '127.0.0.1' } }
})
client.on('error', err => fail(`client error: ${err.message || err}`))
const sha = b => createHash('sha256').update(b).digest('hex')

if (role === 'leech') {
  client.add(magnet, { announce: [tracker] }, t => {
    t.on('done', async () => {
      const got = Buffer.from(await t.files[0].arrayBuffer())
      const types = t.wires.map(w => w.type)
      console.log(`leecher done: ${got.length} bytes, wires ${JSON.stringify(types)}`)
      if (sha(got) !== want) fail(`hash ${sha(got)} != ${want}`)
      if (!types.includes('webrtc')) fail(`no WebRTC wire: ${JSON.stringify(types)}`)
      console.log('PASS: sha256', want, 'over WebRTC, the peer found through', tracker)
      process.exit(0)
    })
  })
} else {
  const data = randomBytes(512 * 1024 + 12345)
  client.seed(data, { announce: [tracker], announceList: [[tracker]], name: 'trakx-webrtc-test.bin' }, torrent => {
    const trackers = new URL(torrent.magnetURI).searchParams.getAll('tr')
    if (trackers.length !== 1 || trackers[0] !== tracker) fail(`magnet trackers ${JSON.stringify(trackers)}`)
    console.log('seeding', torrent.infoHash, 'via', tracker)
    const leecher = fork(new URL(import.meta.url).pathname, [tracker, 'leech', torrent.magnetURI, sha(data)])
    leecher.on('exit', code => process.exit(code))
  })
}
