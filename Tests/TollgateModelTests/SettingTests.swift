import Testing
import TollgateModel

@Suite struct SettingTests {
    static let level = Setting("LEVEL", .text(choices: ["info", "debug"]), default: "info", summary: "a level")
    static let count = Setting("COUNT", .integer(1...10), default: "3", summary: "a count")
    static let token = Setting.required("TOKEN", .integer(1...10), secret: true, summary: "a secret")

    @Test func unset_isTheDefault_andEmptyCountsAsUnset() throws {
        let environment = Environment(["LEVEL": ""])
        #expect(try environment.text(Self.level) == "info")
        #expect(try environment.integer(Self.count) == 3)
        #expect(!environment.isSet(Self.level))
        #expect(throws: ConfigurationError.self) { try Environment([:]).integer(Self.token) }
    }

    @Test func aValueOutsideItsKind_isRefusedNamingTheSetting_andASecretsValueIsNeverEchoed() {
        #expect(throws: ConfigurationError.self) { try Environment(["LEVEL": "loud"]).text(Self.level) }
        do {
            _ = try Environment(["COUNT": "11"]).integer(Self.count)
            Issue.record("11 is out of 1...10")
        } catch {
            #expect("\(error)" == "configuration: COUNT must be a whole number from 1 to 10, not '11'")
        }
        do {
            _ = try Environment(["TOKEN": "hunter2-secret"]).integer(Self.token)
            Issue.record("not a number")
        } catch {
            #expect("\(error)" == "configuration: TOKEN must be a whole number from 1 to 10")
            #expect(!"\(error)".contains("hunter2"))
        }
    }
}
