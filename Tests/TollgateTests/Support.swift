import Foundation
import Logging
import Testing
import TollgateModel
import TollgateRuntime
import TollgateSQLite

/// The package's root folder, found from this file's location.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A fresh SQLite file in a temporary folder, removed with the folder at exit of the test.
func temporaryDatabase(clock: any TollgateModel.Clock = SystemClock()) throws -> SQLiteDatabase {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-tests-\(UUID().uuidString)")
    return try SQLiteDatabase(path: directory.appendingPathComponent("state.db").path, clock: clock)
}

func path(_ text: String) -> DocumentPath { try! DocumentPath(text) }

/// A logger whose lines the test can read.
func capturingLogger(format: CloudLoggingHandler.Format = .json) -> (Logger, LogSink) {
    let sink = LogSink(capturing: true)
    let logger = Logger(label: "test") { label in CloudLoggingHandler(label: label, format: format, project: "tollgate-test", sink: sink) }
    return (logger, sink)
}

/// Expects `body` to throw a TollgateError with `code`; returns the error.
@discardableResult
func expectCode<T>(_ code: TollgateError.Code, _ body: () async throws -> T) async -> TollgateError? {
    do {
        _ = try await body()
        Issue.record("expected \(code), but nothing was thrown")
        return nil
    } catch let error as TollgateError {
        if error.code != code { Issue.record("expected \(code), got \(error.code): \(error.message)") }
        return error
    } catch {
        Issue.record("expected \(code), got \(error)")
        return nil
    }
}
