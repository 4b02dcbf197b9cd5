import Foundation
import Logging
import Testing
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import TollgateEmulator

/// What ships: a function's executable links no test stand-in.
@Suite struct ShippedExecutableTests {
    @Test(Peer.nm.trait, arguments: EmulatedFunction.names)
    func functionExecutable_doesNotLinkTheLocalIssuer(function: String) throws {
        let binary = productURL(function)
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build it first: swift build --product \(function)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Peer.firstExecutable(Peer.nmPaths)))
        process.arguments = [binary.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let symbols = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(symbols.contains("FunctionMain"), "nm read the symbols")
        #expect(!symbols.contains("LocalOIDCIssuer"), "\(function) links the local OIDC issuer")
    }
}
