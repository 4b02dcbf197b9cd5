import Foundation
import Logging
import Synchronization
import Testing
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
}
