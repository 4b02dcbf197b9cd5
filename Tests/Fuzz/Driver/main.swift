import Foundation
import TollgateFuzzTargets

// libFuzzer's entry point. Built with `swift build --sanitize=fuzzer` (which compiles this
// file as a library: libFuzzer supplies `main`), `TOLLGATE_FUZZ_TARGET` picks the target.
// A plain build links it too, as an executable that does nothing.

let selected: (@Sendable (Data) -> Void)? = ProcessInfo.processInfo.environment["TOLLGATE_FUZZ_TARGET"].flatMap { FuzzTargets.all[$0] }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let selected else {
        FileHandle.standardError.write(Data("set TOLLGATE_FUZZ_TARGET to one of \(FuzzTargets.all.keys.sorted())\n".utf8))
        exit(2)
    }
    selected(Data(bytes: bytes, count: count))
    return 0
}
