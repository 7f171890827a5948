// A lazy view: a private copy of a large buffer that memkit did not map (here a 256 MiB
// ArrayBuffer of the JavaScript heap), whose pages are copied only when first touched.
//
//   deno run --allow-ffi examples/lazy_view.ts
//
// A native userfaultfd handler thread copies each page on its first access (UFFDIO_COPY). It
// works as a non-root user too (user-mode faults: touch a page from JavaScript before handing
// it to a system call). `memkit doctor uffd` says which way this machine allows.
import { LazyView, pageSize } from "@memkit/memkit";

const page = pageSize();
const source = new Uint8Array(256 << 20); // 65,536 pages, e.g. a snapshot read into memory
const records = [3, 40_000, 65_535]; // the pages this program will actually read
for (const p of records) source.fill(p & 0xff, p * page, (p + 1) * page);

const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(source)!) as bigint;
using view = LazyView.create({ address, length: source.length }); // nothing is copied yet
console.log(`lazy view of ${source.length >> 20} MiB at 0x${view.address.toString(16)}`);
console.log(`before any read: ${view.stats().pagesCopied} pages copied`);

const bytes = view.bytes();
for (const p of records) {
  const value = bytes[p * page + 17]; // the first touch of the page: the handler copies it
  console.log(`  page ${p} reads ${value}${value === (p & 0xff) ? ", as the source" : " (wrong)"}`);
}
const { pagesCopied, bytesCopied, faults } = view.stats();
const total = source.length / page;
console.log(
  `${pagesCopied} of ${total} pages copied (${bytesCopied / 1024} KiB), ${faults} faults`,
);

// The view is a copy: writing to it leaves the source as it was.
bytes[records[0] * page] = 0;
const intact = source[records[0] * page] === (records[0] & 0xff);
console.log(`after a write to the view the source is unchanged: ${intact}`);
