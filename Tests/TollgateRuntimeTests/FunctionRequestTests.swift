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

@Suite struct FunctionRequestTests {
    @Test func headerNames_matchIgnoringASCIICaseOnly() {
        let request = FunctionRequest(
            method: "POST", path: "/", headers: [(name: "x-cloudtasks-queuename", value: "q"), (name: "X-A[", value: "bracket")],
            body: Data())
        #expect(request.header("X-CloudTasks-QueueName") == "q")
        #expect(request.header("X-CLOUDTASKS-QUEUENAME") == "q")
        #expect(request.header("x-a{") == nil, "[ and { differ by the case bit but are not letters")
        #expect(request.header("X-CloudTasks-QueueNam") == nil)
    }
}
