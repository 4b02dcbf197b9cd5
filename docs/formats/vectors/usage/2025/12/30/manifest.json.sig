{"algorithm":"Ed25519","keyId":"1e7b475a3d7a21b86a057e7687431a8a","signature":"JAUbNeusHju0cHiRxeaMmDDeEHQsDeuaFgkRkmekd5Fv3LpbEa0mf32Q7WUgB7zk0UfR+ilTWTsvD27xYf9vDA=="}
