{"algorithm":"Ed25519","keyId":"1e7b475a3d7a21b86a057e7687431a8a","signature":"intB9CWZSprUaHUSzTDsdCSwoW1pr6uaQ//QpXsGNjXj0I7FvU3StPoyaroCN8VmzCNXWBVVs1oOSrJEXZSHBQ=="}
