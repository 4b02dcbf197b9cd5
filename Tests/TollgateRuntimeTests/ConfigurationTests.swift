import Foundation
import Logging
import Synchronization
import Testing
import TollgateDrivers
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@Suite struct ConfigurationTests {
    @Test func internalTrigger_withoutAudience_namesTheMissingSetting() {
        let declaration = RecordingPubSubFunction().declaration
        #expect(throws: ConfigurationError.self) { try RuntimeConfiguration(environment: Environment([:]), function: declaration) }
        do {
            _ = try RuntimeConfiguration(environment: Environment(["TOLLGATE_INVOKERS": "a@b"]), function: declaration)
        } catch let error as ConfigurationError {
            #expect(error.setting == "TOLLGATE_AUDIENCE")
        } catch { Issue.record("\(error)") }
    }

    @Test func malformedPort_namesTheSetting() {
        let declaration = FunctionDeclaration(name: "x", trigger: .http(authenticated: false, retryingSender: false))
        do {
            _ = try RuntimeConfiguration(environment: Environment(["PORT": "eighty"]), function: declaration)
            Issue.record("accepted a bad PORT")
        } catch let error as ConfigurationError {
            #expect(error.setting == "PORT")
        } catch { Issue.record("\(error)") }
        #expect((try? RuntimeConfiguration(environment: Environment([:]), function: declaration))?.port == 8080)
    }

    /// `TOLLGATE_REQUEST_DEADLINE_MS` overrides the declared deadline, within 100 ms and the
    /// service's timeout.
    @Test func requestDeadline_defaultsToTheDeclaration_andIsBoundedByTheTimeout() throws {
        let declaration = FunctionDeclaration(
            name: "x", trigger: .http(authenticated: false, retryingSender: false), service: .init(timeoutSeconds: 10))
        #expect(try RuntimeConfiguration(environment: Environment([:]), function: declaration).deadline == .milliseconds(8_000))
        let set = try RuntimeConfiguration(environment: Environment(["TOLLGATE_REQUEST_DEADLINE_MS": "2500"]), function: declaration)
        #expect(set.deadline == .milliseconds(2_500))
        for refused in ["99", "10001", "soon", "-1"] {
            #expect(throws: ConfigurationError.self, "\(refused)") {
                try RuntimeConfiguration(environment: Environment(["TOLLGATE_REQUEST_DEADLINE_MS": refused]), function: declaration)
            }
        }
    }

    /// A moved clock is for local runs: refused beside any store but SQLite or Firestore's
    /// emulator, and a malformed offset is named.
    @Test func clockOffset_movesTheClock_onlyOnLocalOrEmulatedStores() throws {
        #expect(try FunctionMain.clock(Environment([:])) is SystemClock)
        let local = try FunctionMain.clock(Environment(["TOLLGATE_CLOCK_OFFSET_SECONDS": "-86400", "TOLLGATE_STORE": "sqlite://x.db"]))
        let moved = try #require(local as? ShiftedClock)
        #expect(abs(moved.now().microsecondsSinceEpoch - SystemClock().now().microsecondsSinceEpoch + 86_400_000_000) < 5_000_000)
        let emulated = Environment([
            "TOLLGATE_CLOCK_OFFSET_SECONDS": "60", "TOLLGATE_STORE": "firestore://p", "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1",
        ])
        #expect(try FunctionMain.clock(emulated) is ShiftedClock)
        for refused in [
            ["TOLLGATE_CLOCK_OFFSET_SECONDS": "60", "TOLLGATE_STORE": "firestore://production"],
            ["TOLLGATE_CLOCK_OFFSET_SECONDS": "a day", "TOLLGATE_STORE": "sqlite://x.db"],
        ] {
            do {
                _ = try FunctionMain.clock(Environment(refused))
                Issue.record("accepted \(refused)")
            } catch let error as ConfigurationError {
                #expect(error.setting == "TOLLGATE_CLOCK_OFFSET_SECONDS")
            }
        }
    }
}
