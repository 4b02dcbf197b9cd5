import Foundation
import Logging
import Testing
import TollgateEmulator
import TollgateModel
import TollgateRuntime
import TollgateTestSupport

/// Secrets, keys and tokens never reach a log line: every fixture is replayed with the
/// functions logging at debug level, and every line is searched.
@Suite(.serialized) struct SecretsInLogsTests {
    static let forbidden = [
        #"tg_(live|test)_[0-9A-Za-z]{32}"#,  // a whole API key
        #"whsec_"#,  // a webhook secret
        #"eyJ[0-9A-Za-z_-]{10,}\.eyJ"#,  // a JWT
        NSRegularExpression.escapedPattern(for: LocalEnvironment.keyPepper),
        #"sk_(live|test)_[0-9A-Za-z_]{8,}"#,  // a Stripe API key
        NSRegularExpression.escapedPattern(for: LocalEnvironment.exportSigningKey),
        #"ya29\.[0-9A-Za-z_-]{8,}"#,  // a Google OAuth access token
    ].map { try! NSRegularExpression(pattern: $0) }

    @Test func thePatterns_catchWhatTheyAreFor() throws {
        let samples = [
            "key=tg_live_" + String(repeating: "a", count: 32), "whsec_tollgate_emulator_current",
            try sharedIssuer.token(audience: "a", issuedAt: Timestamp(secondsSinceEpoch: 0)), "p=" + LocalEnvironment.keyPepper,
            "Bearer " + StripeFakeServer.apiKey, "key " + LocalEnvironment.exportSigningKey, "Authorization: Bearer ya29.a0AfB_byC-example",
        ]
        for (pattern, sample) in zip(Self.forbidden, samples) {
            #expect(pattern.firstMatch(in: sample, range: NSRange(sample.startIndex..., in: sample)) != nil, "\(pattern.pattern)")
        }
        #expect(Self.forbidden[0].firstMatch(in: "keyId=tg_live_AbCd", range: NSRange(location: 0, length: 18)) == nil)
    }

    @Test func noFixtureLogsAKeyASecretOrAToken() async throws {
        let sink = LogSink(capturing: true)
        var logger = Logger(label: "replay") { label in CloudLoggingHandler(label: label, format: .json, project: nil, sink: sink) }
        logger.logLevel = .debug
        let directory = scratchURL("secrets")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let replayer = try Replayer(options: .init(stateDirectory: directory, logger: logger))
        for (url, name) in try Fixture.discover([packageRoot.appendingPathComponent("events").path]) {
            _ = await replayer.replay(try Fixture(url: url, name: name))
        }
        let lines = sink.captured
        #expect(lines.count > 200, "the fixtures log their deliveries")
        for line in lines {
            for pattern in Self.forbidden where pattern.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil {
                Issue.record("a log line matches \(pattern.pattern): \(line.prefix(200))")
            }
        }
    }
}
