import Foundation

/// Folders in the temporary directory named `PREFIX<pid>`, one per process, that a process
/// removes when it exits. One killed (SIGKILL, out of memory) cannot: the next process
/// using the prefix removes the folders of processes that have ended.
public enum EndedProcessFolders {
    /// Removes every `prefix<pid>` folder whose process no longer exists; answers how many.
    @discardableResult
    public static func remove(prefix: String) -> Int {
        let files = FileManager.default
        var removed = 0
        for name in (try? files.contentsOfDirectory(atPath: files.temporaryDirectory.path)) ?? [] where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            if (try? files.removeItem(at: files.temporaryDirectory.appendingPathComponent(name))) != nil { removed += 1 }
        }
        return removed
    }
}
