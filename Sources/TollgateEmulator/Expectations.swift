import Foundation
import TollgateModel

/// Compares an expected JSON value with an actual one: objects by the keys the
/// expectation names (a subset), everything else exactly. Returns readable differences.
enum Expectation {
    static func differences(expected: JSONValue, actual: JSONValue?, at path: String) -> [String] {
        guard let actual else { return ["\(path): expected \(expected.rendered()), found nothing"] }
        switch (expected, actual) {
        case (.object(let want), .object(let have)):
            return want.keys.sorted().flatMap { key in
                differences(expected: want[key]!, actual: have[key], at: path.isEmpty ? key : "\(path).\(key)")
            }
        case (.integer(let a), .double(let b)) where Double(a) == b: return []
        case (.double(let a), .integer(let b)) where a == Double(b): return []
        default:
            return expected == actual ? [] : ["\(path): expected \(expected.rendered()), got \(actual.rendered())"]
        }
    }

    /// Checks a fixture's `expect` block against the state and the published messages.
    static func check(_ expect: JSONValue, state: JSONValue, published: [(topic: String, data: JSONValue)]) -> [String] {
        var problems: [String] = []
        let documents = state["documents"]?.objectValue ?? [:]
        for (path, expected) in (expect["documents"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            problems += differences(expected: expected, actual: documents[path], at: path)
        }
        for path in expect["absent"]?.arrayValue?.compactMap(\.stringValue) ?? [] where documents[path] != nil {
            problems.append("\(path): expected no document, found \(documents[path]!.rendered())")
        }
        for (collection, count) in (expect["counts"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            let actual = documents.keys.filter { $0.hasPrefix(collection + "/") && !$0.dropFirst(collection.count + 1).contains("/") }.count
            if Int64(actual) != count.integerValue {
                problems.append("\(collection): expected \(count.rendered()) documents, found \(actual)")
            }
        }
        if let deadLetters = expect["deadLetters"]?.integerValue {
            let actual = documents.keys.filter { $0.hasPrefix(DeadLetter.collection + "/") }.count
            if actual != deadLetters { problems.append("deadLetters: expected \(deadLetters), found \(actual)") }
        }
        if let messages = expect["published"]?.arrayValue {
            if messages.count != published.count {
                let topics = published.map(\.topic).joined(separator: ", ")
                problems.append(
                    "published: expected \(messages.count) messages, found \(published.count)\(topics.isEmpty ? "" : " (\(topics))")")
            }
            for (index, (want, have)) in zip(messages, published).enumerated() {
                problems += differences(
                    expected: want, actual: .object(["topic": .string(have.topic), "data": have.data]), at: "published[\(index)]")
            }
        }
        if let objects = expect["objects"]?.objectValue {
            let actual = state["objects"]?.objectValue ?? [:]
            for (name, expected) in objects.sorted(by: { $0.key < $1.key }) {
                problems += differences(expected: expected, actual: actual[name], at: "objects/\(name)")
            }
        }
        if let count = expect["objectCount"]?.integerValue, let actual = state["objects"]?.objectValue?.count, actual != count {
            problems.append("objects: expected \(count), found \(actual)")
        }
        if let events = expect["meterEvents"] {
            let actual = state["stripeMeterEvents"]?.objectValue ?? [:]
            if let count = events.integerValue {
                if actual.count != count { problems.append("meterEvents: expected \(count), found \(actual.count)") }
            } else {
                problems += differences(expected: events, actual: .object(actual), at: "meterEvents")
                let extra = Set(actual.keys).subtracting(events.objectValue.map { Array($0.keys) } ?? [])
                if !extra.isEmpty { problems.append("meterEvents: unexpected \(extra.sorted().joined(separator: ", "))") }
            }
        }
        if let tasks = expect["tasks"]?.objectValue {
            let actual = state["tasks"]?.objectValue ?? [:]
            for (name, expected) in tasks.sorted(by: { $0.key < $1.key }) {
                problems += differences(expected: expected, actual: actual[name], at: "tasks/\(name)")
            }
        }
        return problems
    }

    /// Line-by-line differences of two renderings, for "state differs" reports.
    static func stateDifferences(_ plain: JSONValue, _ other: JSONValue) -> [String] {
        let a = plain["documents"]?.objectValue ?? [:]
        let b = other["documents"]?.objectValue ?? [:]
        var lines: [String] = []
        for path in Set(a.keys).union(b.keys).sorted() where a[path] != b[path] {
            lines.append("\(path): plain \(a[path]?.rendered() ?? "absent"); perturbed \(b[path]?.rendered() ?? "absent")")
        }
        for key in ["objects", "tasks", "stripeMeterEvents"] where plain[key] != other[key] { lines.append("\(key) differ") }
        return lines
    }
}
