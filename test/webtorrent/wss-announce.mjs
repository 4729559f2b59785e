// One WebTorrent announce over the URL given (wss:// through a proxy), as
// a browser would send it; exits 0 when the tracker answers it.
import WebSocket from 'ws'

const url = process.argv[2]
const latin1 = bytes => String.fromCharCode(...bytes)
const infoHash = latin1(Array.from({ length: 20 }, (_, i) => 0xa0 + i))
const ws = new WebSocket(url)
setTimeout(() => { console.error('FAIL: no answer within 10 s'); process.exit(1) }, 10_000).unref()
ws.on('error', err => { console.error('FAIL:', err.message); process.exit(1) })
ws.on('open', () => ws.send(JSON.stringify({
  action: 'announce', info_hash: infoHash, peer_id: '-WW0001-wssannounce1', numwant: 0, uploaded: 0, downloaded: 0, left: 0, event: 'started'
})))
ws.on('message', m => {
  const reply = JSON.parse(m.toString())
  if (reply.action !== 'announce' || reply.info_hash !== infoHash || reply.complete !== 1) {
    console.error('FAIL: reply', reply)
    process.exit(1)
  }
  console.log('wss announce answered:', JSON.stringify({ ...reply, info_hash: '…' }))
  ws.close()
  process.exit(0)
})
