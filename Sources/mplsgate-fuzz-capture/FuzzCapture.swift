#if canImport(Glibc)
import Glibc
#endif
import Capture
import FuzzInputs

/// libFuzzer target for our capture readers (`mplsgate replay`'s input): each input is written as a file and read
/// frame by frame with `CaptureReader`: our pcapng reader, our classic-pcap block reader, and for other pcap variants
/// our handling of what libpcap returns (libpcap itself is not ours to fuzz). Frames go into a buffer of exactly
/// `capacity` bytes, so AddressSanitizer catches a copy past it. Invariants beyond "no crash": a frame fits the
/// buffer (or is flagged too large with no bytes), the original length is at least the captured one, and the
/// reader's position never passes the file's size. Built by scripts/fuzz.sh (`--sanitize=fuzzer,address`).
/// MPLSGATE_FUZZ_REACH=1 (`FuzzReach`): each input's outcome, a result or its error's kind, counted and printed at exit.
let capacity = 1600
let path = "/dev/shm/mplsgate-fuzz-capture-\(getpid())"
nonisolated(unsafe) let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCapture(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { return 0 }
    var off = 0
    while off < size {
        let n = write(fd, data + off, size - off)
        if n <= 0 { break }
        off += n
    }
    close(fd)
    defer { unlink(path) }
    let reader: CaptureReader
    do { reader = try CaptureReader(path: path) } catch {
        FuzzReach.count("error \(error.kind.rawValue)")
        return 0
    }
    // A capture of n bytes holds fewer than n frames; the bound only keeps a looping reader from hanging the run.
    for _ in 0...size {
        let frame: CapturedFrame?
        do { frame = try reader.next(into: buffer, capacity: capacity) } catch {
            FuzzReach.count("error \(error.kind.rawValue)")
            return 0
        }
        guard let f = frame else { FuzzReach.count("result read"); break }
        precondition(f.tooLarge ? f.length == 0 : (0...capacity).contains(f.length), "frame length \(f.length)")
        precondition(f.tooLarge || f.originalLength >= f.length, "original length \(f.originalLength) < \(f.length)")
        precondition(reader.isPcapNG == false || reader.position <= reader.fileSize, "position past the end")
    }
    return 0
}

#if !FUZZING
/// Without libFuzzer: runs inputs given as files, one capture per file.
@main
struct ReplayInputs {
    static func main() { FuzzInputs.replayArguments(fuzzCapture) }
}
#endif
