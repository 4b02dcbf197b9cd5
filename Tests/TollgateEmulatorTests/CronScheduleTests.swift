import Foundation
import Synchronization
import Testing
import TollgateEmulator
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting
import UsageReport

/// Cloud Scheduler's unix-cron schedules.
@Suite struct CronScheduleTests {
    func next(_ expression: String, zone: String = "Etc/UTC", after: String) throws -> String {
        try CronSchedule(expression, timeZone: zone).next(after: #require(Timestamp(rfc3339: after))).rfc3339
    }

    @Test func everyTenMinutes_runsOnTheNextMultipleOfTen() throws {
        #expect(try next("*/10 * * * *", after: "2026-03-01T00:00:00Z") == "2026-03-01T00:10:00Z")
        #expect(try next("*/10 * * * *", after: "2026-03-01T00:09:59Z") == "2026-03-01T00:10:00Z")
        #expect(try next("*/10 * * * *", after: "2026-03-01T23:55:00Z") == "2026-03-02T00:00:00Z")
    }

    @Test func daily_runsOnceADayAtItsTime() throws {
        #expect(try next("30 0 * * *", after: "2026-03-01T00:30:00Z") == "2026-03-02T00:30:00Z")
        #expect(try next("15 3 * * *", after: "2026-12-31T04:00:00Z") == "2027-01-01T03:15:00Z")
    }

    @Test func dayOfMonthAndDayOfWeek_bothRestricted_runOnEither() throws {
        // 2026-03-01 is a Sunday; the 15th or any Monday.
        #expect(try next("0 9 15 * MON", after: "2026-03-01T10:00:00Z") == "2026-03-02T09:00:00Z")
        #expect(try next("0 9 15 * 1", after: "2026-03-10T10:00:00Z") == "2026-03-15T09:00:00Z")
        #expect(try next("0 0 * * 7", after: "2026-03-02T00:00:00Z") == "2026-03-08T00:00:00Z", "7 is Sunday too")
    }

    @Test func rangesListsStepsAndMonthNames() throws {
        #expect(try next("0 8-18/5 * * *", after: "2026-03-01T08:00:00Z") == "2026-03-01T13:00:00Z")
        #expect(try next("5,35 * * * *", after: "2026-03-01T00:06:00Z") == "2026-03-01T00:35:00Z")
        #expect(try next("0 0 1 JAN,jul *", after: "2026-03-01T00:00:00Z") == "2026-07-01T00:00:00Z")
        #expect(try next("0 0 29 2 *", after: "2026-03-01T00:00:00Z") == "2028-02-29T00:00:00Z")
    }

    @Test func timeZone_placesTheRunInLocalTime_acrossDaylightSaving() throws {
        #expect(try next("0 9 * * *", zone: "America/New_York", after: "2026-03-07T00:00:00Z") == "2026-03-07T14:00:00Z")
        #expect(try next("0 9 * * *", zone: "America/New_York", after: "2026-03-09T00:00:00Z") == "2026-03-09T13:00:00Z")
    }

    @Test(arguments: ["* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "5-1 * * * *", "* * * FOO *", "a b c d e"])
    func malformedSchedules_areRefused(expression: String) {
        #expect(throws: TollgateError.self) { try CronSchedule(expression) }
    }

    @Test func unknownTimeZone_isRefused() {
        #expect(throws: TollgateError.self) { try CronSchedule("* * * * *", timeZone: "Mars/Olympus") }
    }

    @Test func everyDeclaredSchedule_parses() throws {
        for declaration in EmulatedFunction.declarations {
            guard case .scheduler(_, let schedule, let zone) = declaration.trigger else { continue }
            _ = try CronSchedule(schedule, timeZone: zone)
        }
    }
}

extension LocalCloudTests {
    @Test func subscriptionToAFunctionThatNoLongerExists_isNacked_notRetriedInALoop() async throws {
        let (cloud, _, _, database) = try await makeCloud { clock in Stubs(clock: clock) }
        try await SQLitePushSubscriptions(database).createOrUpdate(
            .init(name: "retired-usage-events", topic: Topic.usageEvents, endpoint: "retired-function/"))
        _ = try await cloud.publish(OutgoingMessage(data: [1]), to: Topic.usageEvents)
        _ = try await cloud.advance(seconds: 5)
        let delivery = try await database.stateDump()["pushDeliveries"]?["retired-usage-events/1"]
        #expect(delivery?["lastStatus"]?.integerValue == 404)
        #expect(delivery?["attempts"]?.integerValue == 1, "one attempt, then the 10 s backoff")
    }
}

extension LocalCloudTests {
    @Test func idTokens_areReusedForTheirHour_thenMintedAfresh() async throws {
        let (cloud, stubs, _, _) = try await makeCloud { clock in Stubs(clock: clock) }
        _ = try await cloud.advance(seconds: 2 * 3_600)
        let tokens = stubs.requests(to: "quota-reset").map { $0.request.header("Authorization") ?? "" }
        #expect(tokens.count == 12)
        // Minted at 00:10 and reused until five minutes before it expires: 00:10 to 01:00.
        #expect(Set(tokens.prefix(6)).count == 1, "the runs of the token's first 55 minutes share it")
        #expect(tokens[6] != tokens[5] && Set(tokens.suffix(6)).count == 1, "a new one at 01:10, for the next 55 minutes")
    }

    @Test func functionEnvironment_fillsInTheDeclaredSettingsAndLocalStandIns() throws {
        let keys = try LocalKeys(oidc: sharedIssuer, clerk: sharedIssuer)
        func environment(_ name: String) throws -> [String: String] {
            let declaration = try #require(EmulatedFunction.declarations.first { $0.name == name })
            return try LocalEnvironment.environment(
                for: declaration, statePath: "/tmp/s.db", keys: keys, stripeBaseURL: "http://127.0.0.1:9")
        }
        let export = try environment("usage-export")
        #expect(export["TOLLGATE_USAGE_REPORT_URL"] == LocalEnvironment.url(of: "usage-report"))
        #expect(export["TOLLGATE_EXPORT_SIGNING_KEY"] == LocalEnvironment.exportSigningKey)
        #expect(export["TOLLGATE_STRIPE_API_BASE"] == nil)
        #expect(try environment("usage-report")["TOLLGATE_STRIPE_API_BASE"] == "http://127.0.0.1:9")
        #expect(try environment("stripe-webhook")["TOLLGATE_PRICE_TIERS"] == LocalEnvironment.priceTiers)
        #expect(try environment("usage-recorder")["TOLLGATE_AUDIENCE"] == LocalEnvironment.url(of: "usage-recorder"))
        #expect(try environment("usage-recorder")["TOLLGATE_STORE"] == "sqlite:///tmp/s.db")
        #expect(try environment("usage-export")["TOLLGATE_EXPORT_PART_RECORDS"] == "5", "a replay's small parts, as a setting")
    }
}
